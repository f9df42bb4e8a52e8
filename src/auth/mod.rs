//! The owner's credentials and every token check. [`Auth::authenticate`] runs on every
//! request and touches neither argon2 nor the database: the signing key, the session
//! epoch, revoked sessions and live API token ids are held in memory and written through
//! to the database whenever they change.

pub mod jwt;
pub mod password;
pub mod scope;
pub mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio_util::sync::CancellationToken;

use crate::config::AuthConfig;
use crate::db::settings::{self, Key};
use crate::db::tokens::{self, api_token};
use crate::ticker::Every;
use jwt::{Claims, Jwt, OWNER, TokenKind};
use scope::{Grant, Scope};
use throttle::LoginThrottle;

/// Name of the cookie that carries a session token.
pub const COOKIE_NAME: &str = "wagate_session";

/// Its name over HTTPS (`auth.cookie_secure`): the `__Host-` prefix makes browsers refuse
/// it unless it is `Secure`, for path `/` and without a `Domain`, so a sibling subdomain
/// cannot plant a session cookie of its own.
pub const SECURE_COOKIE_NAME: &str = "__Host-wagate_session";

/// The session cookie's name for this configuration.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure { SECURE_COOKIE_NAME } else { COOKIE_NAME }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no password is set yet")]
    PasswordNotSet,
    #[error("wrong password")]
    InvalidPassword,
    #[error("too many failed attempts")]
    Throttled(Duration),
    #[error("too many password checks at once")]
    Busy,
    #[error("the setup code is required")]
    SetupCodeRequired,
    #[error("the current password is required")]
    OldPasswordRequired,
    #[error("the new password is too short")]
    PasswordTooShort,
    #[error("the new password is too long")]
    PasswordTooLong,
    #[error("no credentials")]
    MissingCredentials,
    #[error("invalid token")]
    InvalidToken,
    #[error("no such token")]
    TokenNotFound,
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Password(password::PasswordError),
    #[error("token encoding failed: {0}")]
    Encode(#[from] jsonwebtoken::errors::Error),
}

impl From<password::PasswordError> for AuthError {
    fn from(err: password::PasswordError) -> Self {
        match err {
            password::PasswordError::Busy => AuthError::Busy,
            other => AuthError::Password(other),
        }
    }
}

/// A freshly issued token; the token string is shown to the caller once and never stored.
pub struct Issued {
    pub token: String,
    pub claims: Claims,
}

pub struct Auth {
    db: DatabaseConnection,
    jwt: Jwt,
    config: AuthConfig,
    password_set: AtomicBool,
    epoch: AtomicI64,
    /// Revoked session ids and their expiry (unix seconds), until they expire anyway.
    revoked_sessions: RwLock<HashMap<String, i64>>,
    /// API tokens that have not been revoked, by id, with what each may do.
    api_tokens: RwLock<HashMap<String, Arc<Grant>>>,
    throttle: LoginThrottle,
    /// Bounds the password hashes computed at once.
    hashing: password::Gate,
    /// One-time code that allows setting the first password from a remote address.
    setup_code: Mutex<Option<String>>,
    /// Serialises password changes so two cannot interleave their check and write.
    password_change: tokio::sync::Mutex<()>,
    /// Tokens whose signature was already verified, so a repeated token costs a hash
    /// lookup instead of an HMAC and a JSON parse. Expiry and revocation are still
    /// checked on every use.
    verified: quick_cache::sync::Cache<String, Arc<Claims>>,
}

/// How many verified tokens to remember.
const VERIFIED_CACHE: usize = 10_000;

impl Auth {
    /// Loads (or on first start creates) the signing secret and the revocation state.
    pub async fn load(db: DatabaseConnection, config: AuthConfig) -> Result<Self, DbErr> {
        let secret = settings::put_if_absent(&db, Key::JwtSecret, &random_hex(32)).await?;
        let secret = hex::decode(&secret).map_err(|_| DbErr::Custom("stored JWT secret is not hex".into()))?;
        let epoch = match settings::get(&db, Key::SessionEpoch).await? {
            Some(value) => value
                .parse()
                .map_err(|_| DbErr::Custom("stored session epoch is not a number".into()))?,
            None => 0,
        };
        let password_set = settings::get(&db, Key::PasswordHash).await?.is_some();
        let revoked = tokens::live_revoked_sessions(&db)
            .await?
            .into_iter()
            .map(|row| (row.jti, row.expires_at.timestamp()))
            .collect();
        let api = tokens::active_api_tokens(&db)
            .await?
            .into_iter()
            .map(|row| {
                let grant = Arc::new(Grant::from_stored(row.scopes.as_deref(), row.phones.as_deref()));
                (row.id, grant)
            })
            .collect();
        let setup_code = (!password_set).then(new_setup_code);
        Ok(Self {
            db,
            jwt: Jwt::new(&secret),
            throttle: LoginThrottle::new(
                config.login_max_failures,
                config.login_window,
                config.account_backoff_after,
                config.account_backoff_max,
            ),
            hashing: password::Gate::new(config.max_concurrent_hashes, config.hash_queue),
            config,
            password_set: AtomicBool::new(password_set),
            epoch: AtomicI64::new(epoch),
            revoked_sessions: RwLock::new(revoked),
            api_tokens: RwLock::new(api),
            setup_code: Mutex::new(setup_code),
            password_change: tokio::sync::Mutex::new(()),
            verified: quick_cache::sync::Cache::new(VERIFIED_CACHE),
        })
    }

    pub fn password_set(&self) -> bool {
        self.password_set.load(Ordering::Acquire)
    }

    /// The code to print at start-up while no password is set.
    pub fn setup_code(&self) -> Option<String> {
        lock(&self.setup_code).clone()
    }

    /// How long a password attempt now waits because of the account's back-off.
    pub fn login_delay(&self) -> Duration {
        self.throttle.account_delay()
    }

    pub fn session_ttl(&self) -> Duration {
        self.config.session_ttl
    }

    pub fn cookie_secure(&self) -> bool {
        self.config.cookie_secure
    }

    /// Checks a token entirely in memory. Errors are `InvalidToken` or `PasswordNotSet`.
    pub fn authenticate(&self, token: &str) -> Result<Arc<Claims>, AuthError> {
        self.authorize(token).map(|(claims, _)| claims)
    }

    /// [`Auth::authenticate`], with what the token may do.
    pub fn authorize(&self, token: &str) -> Result<(Arc<Claims>, Arc<Grant>), AuthError> {
        if !self.password_set() {
            return Err(AuthError::PasswordNotSet);
        }
        let claims = match self.verified.get(token) {
            Some(claims) => claims,
            None => {
                let claims = Arc::new(self.jwt.decode(token).ok_or(AuthError::InvalidToken)?);
                self.verified.insert(token.to_owned(), Arc::clone(&claims));
                claims
            }
        };
        let grant = match claims.kind {
            TokenKind::Session => {
                let live = claims
                    .exp
                    .is_some_and(|exp| exp + jwt::LEEWAY_SECS >= Utc::now().timestamp())
                    && claims.epoch == Some(self.epoch.load(Ordering::Acquire))
                    && !read(&self.revoked_sessions).contains_key(&claims.jti);
                live.then(|| Arc::clone(full_grant()))
            }
            TokenKind::Api => read(&self.api_tokens).get(&claims.jti).cloned(),
        };
        grant.map(|grant| (claims, grant)).ok_or(AuthError::InvalidToken)
    }

    /// Verifies the password and issues a session token.
    pub async fn login(&self, ip: IpAddr, password: String) -> Result<Issued, AuthError> {
        self.check_password(ip, password).await?;
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(self.config.session_ttl.as_secs()).unwrap_or(i64::MAX / 2);
        let claims = Claims {
            sub: OWNER.into(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: Some(now.saturating_add(ttl)),
            kind: TokenKind::Session,
            epoch: Some(self.epoch.load(Ordering::Acquire)),
        };
        let token = self.jwt.encode(&claims)?;
        Ok(Issued { token, claims })
    }

    /// Verifies the password and issues a permanent API token that may do what `grant`
    /// allows.
    pub async fn generate_token(
        &self,
        ip: IpAddr,
        password: String,
        name: &str,
        grant: Grant,
    ) -> Result<(Issued, ApiToken), AuthError> {
        self.check_password(ip, password).await?;
        let id = uuid::Uuid::new_v4().to_string();
        let claims = Claims {
            sub: OWNER.into(),
            jti: id.clone(),
            iat: Utc::now().timestamp(),
            exp: None,
            kind: TokenKind::Api,
            epoch: None,
        };
        let token = self.jwt.encode(&claims)?;
        let row = tokens::insert_api_token(&self.db, &id, name, grant.stored_scopes(), grant.stored_phones()).await?;
        write(&self.api_tokens).insert(id, Arc::new(grant));
        Ok((Issued { token, claims }, row.into()))
    }

    pub async fn list_tokens(&self) -> Result<Vec<ApiToken>, AuthError> {
        let rows = tokens::active_api_tokens(&self.db).await?;
        Ok(rows.into_iter().map(ApiToken::from).collect())
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), AuthError> {
        if uuid::Uuid::parse_str(id).is_err() {
            return Err(AuthError::TokenNotFound);
        }
        if !tokens::revoke_api_token(&self.db, id).await? {
            return Err(AuthError::TokenNotFound);
        }
        write(&self.api_tokens).remove(id);
        Ok(())
    }

    /// Ends one session token; API tokens are revoked only through `revoke_token`.
    pub async fn logout(&self, claims: &Claims) -> Result<(), AuthError> {
        if claims.kind != TokenKind::Session {
            return Ok(());
        }
        let Some(expires_at) = claims.expires_at() else {
            return Ok(());
        };
        tokens::revoke_session(&self.db, &claims.jti, expires_at).await?;
        let now = Utc::now().timestamp();
        let mut revoked = write(&self.revoked_sessions);
        revoked.retain(|_, exp| *exp >= now);
        revoked.insert(claims.jti.clone(), expires_at.timestamp());
        Ok(())
    }

    /// Sets the first password or changes it. The first one needs a loopback caller (when
    /// allowed by config) or the setup code; a change needs the current password. Every
    /// session token ends; API tokens stay valid until revoked.
    /// `local`: the caller is on the server's own machine and not behind a proxy (see
    /// `api::auth::is_local_caller`); only such a caller may skip the setup code.
    pub async fn change_password(
        &self,
        ip: IpAddr,
        local: bool,
        old_password: Option<String>,
        new_password: String,
        setup_code: Option<String>,
    ) -> Result<(), AuthError> {
        validate_new_password(&new_password)?;
        let _serialised = self.password_change.lock().await;
        if let Some(hash) = self.reload().await? {
            let old = old_password
                .filter(|p| !p.is_empty())
                .ok_or(AuthError::OldPasswordRequired)?;
            let attempt = self.reserve(ip)?;
            self.verify(attempt, old, hash).await?;
        } else {
            let attempt = self.reserve(ip)?;
            let loopback_ok = self.config.allow_loopback_setup && local;
            let expected = self.setup_code();
            let code_ok = match (setup_code.as_deref(), expected.as_deref()) {
                (Some(given), Some(expected)) => constant_time_eq(given.trim(), expected),
                _ => false,
            };
            if !loopback_ok && !code_ok {
                // Only a wrong code is a guess; a missing one is a question (dropping
                // the attempt gives it back).
                if setup_code.is_some() {
                    self.failed(attempt);
                }
                return Err(AuthError::SetupCodeRequired);
            }
            attempt.succeeded();
        }
        self.store_password(new_password).await
    }

    /// Stores a new password hash and ends every session (the CLI's `password set` too).
    pub async fn store_password(&self, new_password: String) -> Result<(), AuthError> {
        validate_new_password(&new_password)?;
        let hash = self.hashing.hash(new_password).await?;
        let epoch = store_password_hash(&self.db, hash).await?;
        self.epoch.store(epoch, Ordering::Release);
        self.password_set.store(true, Ordering::Release);
        *lock(&self.setup_code) = None;
        Ok(())
    }

    /// Re-reads the password state from the database, so that `wagate password set` run
    /// beside a running server takes effect here too (its sessions end, its password
    /// counts). Returns the stored password hash.
    pub async fn reload(&self) -> Result<Option<String>, DbErr> {
        let hash = settings::get(&self.db, Key::PasswordHash).await?;
        if let Some(epoch) = settings::get(&self.db, Key::SessionEpoch)
            .await?
            .and_then(|value| value.parse::<i64>().ok())
        {
            self.epoch.store(epoch, Ordering::Release);
        }
        if hash.is_some() && !self.password_set.swap(true, Ordering::AcqRel) {
            *lock(&self.setup_code) = None;
        }
        Ok(hash)
    }

    /// Calls [`Auth::reload`] every `interval` until `stop` fires.
    pub fn spawn_reload(self: &Arc<Self>, interval: Duration, stop: CancellationToken) {
        let auth = Arc::clone(self);
        tokio::spawn(async move {
            let mut every = Every::new(interval, stop);
            while every.tick().await {
                if let Err(err) = auth.reload().await {
                    tracing::warn!(error = %err, "cannot re-read the password state");
                }
            }
        });
    }

    async fn check_password(&self, ip: IpAddr, password: String) -> Result<(), AuthError> {
        let attempt = self.reserve(ip)?;
        // Fresh from the database: a token issued now carries the current epoch.
        let hash = self.reload().await?.ok_or(AuthError::PasswordNotSet)?;
        self.verify(attempt, password, hash).await
    }

    /// Counts an attempt from `ip` before anything is checked.
    fn reserve(&self, ip: IpAddr) -> Result<Attempt<'_>, AuthError> {
        let window = self.throttle.reserve(ip).map_err(AuthError::Throttled)?;
        Ok(Attempt {
            throttle: &self.throttle,
            ip,
            window,
            decided: false,
        })
    }

    /// Checks `password` against the stored `hash` for a reserved attempt: after the
    /// account's back-off delay, in a hashing slot.
    async fn verify(&self, attempt: Attempt<'_>, password: String, hash: String) -> Result<(), AuthError> {
        let delay = self.throttle.account_delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if password.len() > password::MAX_LENGTH {
            self.failed(attempt);
            return Err(AuthError::InvalidPassword);
        }
        // A busy server or a failed worker drops the attempt, which gives it back.
        if self.hashing.verify(password, hash).await? {
            attempt.succeeded();
            Ok(())
        } else {
            self.failed(attempt);
            Err(AuthError::InvalidPassword)
        }
    }

    /// A wrong password or setup code: the address's attempt stays counted.
    fn failed(&self, mut attempt: Attempt<'_>) {
        attempt.decided = true;
        let ip = attempt.ip;
        if let Some(failures) = self.throttle.record_failure() {
            tracing::warn!(
                failures,
                window = ?self.config.login_window,
                last_client = %ip,
                "many wrong passwords for the owner account: every attempt is now delayed"
            );
        }
    }
}

/// A password attempt counted against its address. Dropped undecided (the request was
/// given up, the server was busy, the database failed) it is given back: only a checked
/// password counts.
struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    ip: IpAddr,
    window: std::time::Instant,
    decided: bool,
}

impl Attempt<'_> {
    fn succeeded(mut self) {
        self.decided = true;
        self.throttle.record_success(self.ip);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.decided {
            self.throttle.release(self.ip, self.window);
        }
    }
}

pub fn validate_new_password(password: &str) -> Result<(), AuthError> {
    let chars = password.chars().count();
    if chars < password::MIN_LENGTH {
        Err(AuthError::PasswordTooShort)
    } else if password.len() > password::MAX_LENGTH {
        Err(AuthError::PasswordTooLong)
    } else {
        Ok(())
    }
}

/// Hashes and stores the password and moves the session epoch on, in one transaction.
/// Returns the new epoch.
pub async fn store_password(db: &DatabaseConnection, new_password: String) -> Result<i64, AuthError> {
    let hash = password::hash(new_password).await?;
    store_password_hash(db, hash).await
}

async fn store_password_hash(db: &DatabaseConnection, hash: String) -> Result<i64, AuthError> {
    let txn = db.begin().await?;
    let epoch = settings::get(&txn, Key::SessionEpoch)
        .await?
        .and_then(|value| value.parse::<i64>().ok())
        .unwrap_or(0)
        + 1;
    settings::put(&txn, Key::PasswordHash, &hash).await?;
    settings::put(&txn, Key::SessionEpoch, &epoch.to_string()).await?;
    txn.commit().await?;
    Ok(epoch)
}

/// What session tokens may do: everything.
fn full_grant() -> &'static Arc<Grant> {
    static FULL: std::sync::OnceLock<Arc<Grant>> = std::sync::OnceLock::new();
    FULL.get_or_init(|| Arc::new(Grant::full()))
}

/// A permanent API token as its owner sees it: never its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    /// What it may do (tokens minted before scopes existed: `admin`).
    pub scopes: Vec<Scope>,
    /// The phones it may act on; `None`: every phone.
    pub phones: Option<Vec<String>>,
    pub created_at: DateTime<Utc>,
}

impl From<api_token::Model> for ApiToken {
    fn from(row: api_token::Model) -> Self {
        let grant = Grant::from_stored(row.scopes.as_deref(), row.phones.as_deref());
        ApiToken {
            scopes: grant.scopes().collect(),
            phones: grant.phones().map(|p| p.map(str::to_owned).collect()),
            id: row.id,
            name: row.name,
            created_at: row.created_at,
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill(buf.as_mut_slice());
    hex::encode(buf)
}

fn new_setup_code() -> String {
    // No 0/O or 1/I/L: the code is read off a terminal and typed by hand.
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..10)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
