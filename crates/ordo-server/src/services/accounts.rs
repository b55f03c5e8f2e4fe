//! Accounts: a shopper signs up (and is signed in at once); operators create clients and staff
//! users from the CLI. Passwords and secrets are hashed before they reach storage; nothing here
//! returns or logs one.

use super::{ConflictReason, ServiceError};
use crate::AppState;
use crate::auth::tokens::TokenResponse;
use crate::auth::{Caller, Role, passwords};
use ordo_domain::{Email, FieldErrors, PhoneE164};
use ordo_store::{ClientRecord, Store, UserRecord};
use serde::Deserialize;

/// `POST /v1/auth/signup`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupInput {
    #[schema(format = Email, max_length = 254, example = "ana@example.com")]
    pub email: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// E.164, e.g. +14155550100.
    pub phone: Option<String>,
}

fn check_password(errs: &mut FieldErrors, path: &str, password: &str) {
    let n = password.chars().count();
    if n < passwords::MIN_PASSWORD_LEN {
        errs.add(
            path,
            "too_short",
            format!(
                "a password has at least {} characters",
                passwords::MIN_PASSWORD_LEN
            ),
        );
    } else if password.len() > passwords::MAX_LEN {
        errs.add(
            path,
            "too_long",
            format!("a password has at most {} bytes", passwords::MAX_LEN),
        );
    }
}

/// Creates a shopper of the caller's tenant and signs them in.
pub async fn sign_up(
    state: &AppState,
    caller: &Caller,
    input: SignupInput,
) -> Result<TokenResponse, ServiceError> {
    let mut errs = FieldErrors::default();
    let email = errs.take("email", Email::parse(&input.email));
    let phone = match input.phone.as_deref() {
        Some(p) => errs.take("phone", PhoneE164::parse(p)),
        None => None,
    };
    let name = input.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        errs.add("name", "invalid_name", "a name has 1 to 200 characters");
    }
    check_password(&mut errs, "password", &input.password);
    errs.into_result()?;
    let email = email
        .ok_or_else(|| ServiceError::field("email", "invalid_email", "an email is required"))?;
    let hash = passwords::hash(input.password)
        .await
        .ok_or_else(|| ServiceError::Internal("password hashing failed".into()))?;
    let user = UserRecord {
        tenant_id: caller.tenant().to_string(),
        id: format!("cus_{}", uuid::Uuid::now_v7().simple()),
        email: email.as_str().to_lowercase(),
        password_hash: hash,
        name: name.to_string(),
        phone: phone.map(|p| p.as_str().to_string()),
        role: Role::Shopper.as_str().to_string(),
        locations: vec![],
    };
    if !state.store.create_user(&user).await? {
        return Err(ServiceError::conflict(
            ConflictReason::EmailTaken,
            "an account with this email exists; sign in instead",
            vec![],
        ));
    }
    let client = caller.principal.as_ref().map(|p| p.subject.as_str());
    state
        .auth
        .session(&state.store, &user, None, client)
        .await
        .map_err(|e| match e.status {
            503 => ServiceError::Unavailable(e.description),
            _ => ServiceError::Internal(e.description),
        })
}

/// A new OAuth2 client; returns its secret, shown once and never stored.
pub async fn create_client(
    store: &Store,
    tenant: &str,
    client_id: &str,
    role: Role,
    channel: Option<&str>,
    locations: &[String],
    secret: Option<String>,
) -> Result<Option<String>, ServiceError> {
    if client_id.is_empty()
        || client_id.len() > 100
        || !client_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(ServiceError::field(
            "client_id",
            "invalid_client_id",
            "a client id has 1 to 100 letters, digits, '-', '_' or '.'",
        ));
    }
    if role == Role::Guest || role == Role::Shopper {
        return Err(ServiceError::field(
            "role",
            "not_a_client_role",
            "clients are app, staff, admin or channel; shoppers sign up",
        ));
    }
    let secret = secret.unwrap_or_else(passwords::new_secret);
    let hash = passwords::hash(secret.clone())
        .await
        .ok_or_else(|| ServiceError::Internal("secret hashing failed".into()))?;
    let record = ClientRecord {
        client_id: client_id.to_string(),
        tenant_id: tenant.to_string(),
        secret_hash: hash,
        role: role.as_str().to_string(),
        scope: role.default_scope().to_string(),
        channel: channel.map(str::to_string),
        locations: locations.to_vec(),
    };
    Ok(if store.create_client(&record).await? {
        Some(secret)
    } else {
        None
    })
}

/// A staff member or admin who signs in with the password grant.
pub async fn create_user(
    store: &Store,
    tenant: &str,
    email: &str,
    name: &str,
    role: Role,
    password: String,
    locations: &[String],
) -> Result<bool, ServiceError> {
    let mut errs = FieldErrors::default();
    let email = errs.take("email", Email::parse(email));
    check_password(&mut errs, "password", &password);
    errs.into_result()?;
    let email = email
        .ok_or_else(|| ServiceError::field("email", "invalid_email", "an email is required"))?;
    let hash = passwords::hash(password)
        .await
        .ok_or_else(|| ServiceError::Internal("password hashing failed".into()))?;
    let user = UserRecord {
        tenant_id: tenant.to_string(),
        id: format!("usr_{}", uuid::Uuid::now_v7().simple()),
        email: email.as_str().to_lowercase(),
        password_hash: hash,
        name: name.to_string(),
        phone: None,
        role: role.as_str().to_string(),
        locations: locations.to_vec(),
    };
    Ok(store.create_user(&user).await?)
}
