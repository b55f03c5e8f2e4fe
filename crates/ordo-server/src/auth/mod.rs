//! Who is calling: roles, the verified principal behind a request, and the caller every service
//! receives (tenant + principal). Tokens are issued and verified in `tokens`, signed with the
//! rotating keys of `keys` (or, in production, by an external identity provider: `oidc`); `policy` is the one table saying which role may call which route;
//! `webauthn` verifies passkey ceremonies.
//! Nothing here touches a request body; nothing outside here decodes a token.

pub mod keys;
pub mod oidc;
pub mod passwords;
pub mod policy;
pub mod tokens;
pub mod webauthn;

use serde::{Deserialize, Serialize};

/// What a token may do. The policy table speaks in these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The mobile app's client credentials: catalog, carts, tokens, guest checkout.
    App,
    /// A signed-up shopper.
    Shopper,
    /// A guest, for one order only (read, track, cancel, return).
    Guest,
    /// Store and warehouse staff, optionally limited to locations.
    Staff,
    /// Everything staff can do, plus catalog and configuration.
    Admin,
    /// A sales channel's integration, limited to its channel.
    Channel,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::App,
        Role::Shopper,
        Role::Guest,
        Role::Staff,
        Role::Admin,
        Role::Channel,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::App => "app",
            Role::Shopper => "shopper",
            Role::Guest => "guest",
            Role::Staff => "staff",
            Role::Admin => "admin",
            Role::Channel => "channel",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The scope granted to this role when a client asks for none.
    pub fn default_scope(self) -> &'static str {
        match self {
            Role::App => "catalog carts orders",
            Role::Shopper => "catalog carts orders",
            Role::Guest => "order",
            Role::Staff => "catalog inventory orders",
            Role::Admin => "catalog inventory orders admin",
            Role::Channel => "intake",
        }
    }
}

/// A verified token's holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub tenant: String,
    /// `sub`: a user id, a client id, or `guest:<order id>`.
    pub subject: String,
    pub role: Role,
    pub scope: String,
    /// The one order a guest token opens.
    pub order_id: Option<String>,
    /// Locations a staff member is limited to (empty: all).
    pub locations: Vec<String>,
    /// The channel a channel client speaks for.
    pub channel: Option<String>,
}

/// The caller as services see it: the tenant the request acts in and, on protected routes, the
/// principal. Built by the policy layer only.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub tenant: String,
    pub principal: Option<Principal>,
    /// The request's id (`x-request-id`), for the audit log.
    pub request_id: Option<String>,
    /// The client's address, for the audit log.
    pub client_ip: Option<String>,
}

impl Caller {
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Who the request's idempotency keys belong to (keys are scoped per principal).
    pub fn key_owner(&self) -> &str {
        self.principal
            .as_ref()
            .map(|p| p.subject.as_str())
            .unwrap_or("")
    }

    /// The audit log's "who" for an action of this caller (`None` when anonymous).
    pub fn audit_entry(&self) -> Option<ordo_store::AuditEntry> {
        let p = self.principal.as_ref()?;
        Some(ordo_store::AuditEntry {
            actor: p.subject.clone(),
            role: p.role.as_str().to_string(),
            client_ip: self.client_ip.clone(),
            request_id: self.request_id.clone(),
        })
    }

    pub fn role(&self) -> Option<Role> {
        self.principal.as_ref().map(|p| p.role)
    }

    /// Whether this caller may see an order of `customer_id` (None: a guest order) with `order_id`.
    /// Anyone else is told the order does not exist.
    pub fn may_see_order(&self, order_id: &str, customer_id: Option<&str>) -> bool {
        let Some(p) = &self.principal else {
            return false;
        };
        match p.role {
            Role::Staff | Role::Admin => true,
            Role::Shopper => customer_id == Some(p.subject.as_str()),
            Role::Guest => p.order_id.as_deref() == Some(order_id),
            Role::App | Role::Channel => false,
        }
    }
}
