//! Access and refresh tokens.

use std::collections::HashMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use crate::clock;

/// The token answer of `POST /access_token` and `POST /applications/{id}/token`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_token_expires_in: u64,
    pub token_type: &'static str,
}

#[derive(Debug, Clone)]
struct Grant {
    user: Uuid,
    expires: Timestamp,
}

/// Why a bearer token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BearerError {
    Missing,
    Unknown,
    Expired,
}

/// Why a refresh was refused (OAuth error codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrantError {
    /// Wrong client id or secret: 401.
    InvalidClient,
    /// Unknown or expired refresh token: 400.
    InvalidGrant,
    /// A grant type other than `refresh_token`: 400.
    UnsupportedGrantType,
}

impl GrantError {
    pub fn code(self) -> &'static str {
        match self {
            GrantError::InvalidClient => "invalid_client",
            GrantError::InvalidGrant => "invalid_grant",
            GrantError::UnsupportedGrantType => "unsupported_grant_type",
        }
    }
}

/// Tokens in force and the client credentials.
#[derive(Debug)]
pub(crate) struct Auth {
    pub client_id: String,
    pub client_secret: String,
    access: HashMap<String, Grant>,
    refresh: HashMap<String, Grant>,
    token_ttl: Duration,
    refresh_ttl: Duration,
}

impl Auth {
    pub fn new(
        client_id: String,
        client_secret: String,
        token_ttl: Duration,
        refresh_ttl: Duration,
    ) -> Auth {
        Auth {
            client_id,
            client_secret,
            access: HashMap::new(),
            refresh: HashMap::new(),
            token_ttl,
            refresh_ttl,
        }
    }

    /// Registers a token pair for `user`, valid from `now`.
    pub fn grant(
        &mut self,
        user: Uuid,
        access: String,
        refresh: String,
        now: Timestamp,
    ) -> TokenResponse {
        self.access.insert(
            access.clone(),
            Grant {
                user,
                expires: clock::add(now, self.token_ttl),
            },
        );
        self.refresh.insert(
            refresh.clone(),
            Grant {
                user,
                expires: clock::add(now, self.refresh_ttl),
            },
        );
        TokenResponse {
            access_token: access,
            expires_in: self.token_ttl.as_secs(),
            refresh_token: refresh,
            refresh_token_expires_in: self.refresh_ttl.as_secs(),
            token_type: "Bearer",
        }
    }

    /// The user of a valid bearer token.
    pub fn check(&self, authorization: Option<&str>, now: Timestamp) -> Result<Uuid, BearerError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(BearerError::Missing)?;
        let grant = self.access.get(token).ok_or(BearerError::Unknown)?;
        if grant.expires <= now {
            return Err(BearerError::Expired);
        }
        Ok(grant.user)
    }

    /// Checks a refresh request; the user the new pair is for.
    pub fn check_refresh(
        &self,
        grant_type: Option<&str>,
        client_id: Option<&str>,
        client_secret: Option<&str>,
        refresh_token: Option<&str>,
        now: Timestamp,
    ) -> Result<Uuid, GrantError> {
        if grant_type != Some("refresh_token") {
            return Err(GrantError::UnsupportedGrantType);
        }
        self.check_client(client_id, client_secret)?;
        let grant = refresh_token
            .and_then(|t| self.refresh.get(t))
            .ok_or(GrantError::InvalidGrant)?;
        if grant.expires <= now {
            return Err(GrantError::InvalidGrant);
        }
        Ok(grant.user)
    }

    /// Checks the client credentials.
    pub fn check_client(
        &self,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) -> Result<(), GrantError> {
        if client_id != Some(self.client_id.as_str())
            || client_secret != Some(self.client_secret.as_str())
        {
            return Err(GrantError::InvalidClient);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_refresh_tokens_rotate() {
        let now = clock::now();
        let user = Uuid::nil();
        let mut auth = Auth::new(
            "c".into(),
            "s".into(),
            Duration::from_secs(10),
            Duration::from_secs(100),
        );
        auth.grant(user, "a1".into(), "r1".into(), now);
        assert_eq!(auth.check(Some("Bearer a1"), now), Ok(user));
        assert_eq!(auth.check(None, now), Err(BearerError::Missing));
        assert_eq!(auth.check(Some("Bearer x"), now), Err(BearerError::Unknown));
        let later = clock::add(now, Duration::from_secs(11));
        assert_eq!(
            auth.check(Some("Bearer a1"), later),
            Err(BearerError::Expired)
        );
        let refresh = |auth: &Auth, token| {
            auth.check_refresh(
                Some("refresh_token"),
                Some("c"),
                Some("s"),
                Some(token),
                later,
            )
        };
        assert_eq!(refresh(&auth, "r1"), Ok(user));
        assert_eq!(refresh(&auth, "r2"), Err(GrantError::InvalidGrant));
        assert_eq!(
            auth.check_refresh(
                Some("refresh_token"),
                Some("c"),
                Some("bad"),
                Some("r1"),
                later
            ),
            Err(GrantError::InvalidClient)
        );
        auth.grant(user, "a2".into(), "r2".into(), later);
        assert_eq!(
            refresh(&auth, "r1"),
            Ok(user),
            "the old refresh token stays valid"
        );
        assert_eq!(refresh(&auth, "r2"), Ok(user));
    }
}
