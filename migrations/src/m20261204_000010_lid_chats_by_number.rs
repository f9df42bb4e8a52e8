//! One chat per person for history kept before it: messages stored under a person's LID
//! (`…@lid`) move to their phone number where the phone's contacts know it, the LID kept
//! in `sender_lid`; a contact kept under the LID alone is folded into the one under the
//! number. Rows whose number is unknown stay as they are. Plain SQL that SQLite and
//! PostgreSQL both run; `down` leaves the data as it is (nothing to undo: the LID is kept).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The contact of the row's phone whose LID is `{column}` and whose JID is a number.
fn number_of(column: &str) -> String {
    format!(
        "SELECT c.jid FROM contacts c WHERE c.phone = messages.phone AND c.lid = messages.{column} \
         AND c.jid LIKE '%@s.whatsapp.net' ORDER BY c.jid LIMIT 1"
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let sender = number_of("sender");
        db.execute_unprepared(&format!(
            "UPDATE messages SET sender_lid = sender, sender = ({sender}) \
             WHERE sender LIKE '%@lid' AND sender_lid IS NULL AND EXISTS ({sender})"
        ))
        .await?;
        let chat = number_of("chat");
        db.execute_unprepared(&format!(
            "UPDATE messages SET chat = ({chat}) WHERE chat LIKE '%@lid' AND EXISTS ({chat})"
        ))
        .await?;
        // The contact under the LID gives the one under the number what it lacks, then goes.
        let twin = "SELECT 1 FROM contacts l WHERE l.phone = contacts.phone AND l.jid = contacts.lid \
                    AND l.jid LIKE '%@lid'";
        for column in ["name", "push_name"] {
            db.execute_unprepared(&format!(
                "UPDATE contacts SET {column} = (SELECT l.{column} FROM contacts l WHERE l.phone = contacts.phone \
                 AND l.jid = contacts.lid) WHERE jid LIKE '%@s.whatsapp.net' AND {column} IS NULL AND EXISTS ({twin})"
            ))
            .await?;
        }
        db.execute_unprepared(
            "DELETE FROM contacts WHERE jid LIKE '%@lid' AND EXISTS (SELECT 1 FROM contacts n \
             WHERE n.phone = contacts.phone AND n.lid = contacts.jid AND n.jid LIKE '%@s.whatsapp.net')",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
