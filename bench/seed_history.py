"""Fills a wagate SQLite database with N messages for one phone, as the phone's actor would
have stored them (seq 1..N without gaps). The phone must already exist (the schema comes
from the server's own migrations). Usage: seed_history.py DB PHONE N"""
import datetime
import sqlite3
import sys

db, phone, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = sqlite3.connect(db)
conn.execute("PRAGMA journal_mode=WAL")
conn.execute("PRAGMA synchronous=OFF")
start = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def rows():
    for seq in range(1, count + 1):
        ts = (start + datetime.timedelta(seconds=seq)).isoformat(timespec="microseconds")
        inbound = seq % 3 == 0
        chat = f"1201555{seq % 1000:04d}@s.whatsapp.net"
        yield (
            phone, seq, f"3EB0{seq:016X}", "in" if inbound else "out", chat,
            chat if inbound else f"{phone[1:]}@s.whatsapp.net", "text", f"message number {seq}",
            None, None, None, None, "Someone" if inbound else None,
            "received" if inbound else "read", ts, ts, ts,
        )


conn.executemany(
    "INSERT INTO messages (phone, seq, message_id, direction, chat, sender, kind, body, media_mime, "
    "media_file_name, media_size, quoted_id, push_name, status, timestamp, created_at, updated_at) "
    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
    rows(),
)
conn.commit()
conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
print(f"seeded {count} messages for {phone}")
