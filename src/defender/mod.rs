//! Talking to Microsoft Defender for Endpoint: hosts per cloud, the OAuth client-credentials token,
//! the two watchlist alert endpoints, and the Alert entity with every quirk the reference lists.

pub mod alert;
pub mod auth;
pub mod certificate;
mod chunk;
pub mod client;
pub mod cloud;
pub mod errors;
mod evidence;
mod lenient;
mod nested;
pub mod odata;
mod page;
pub mod rotation;
pub mod stream;
pub mod time;
pub mod tls;

pub use alert::{Alert, Evidence, PolledAlert};
pub use client::DefenderClient;
pub use errors::ApiError;
pub use page::{EntryAlerts, Intake, IDS_KEPT};

/// Sent on every request, in the form Microsoft asks partners to use (docs/microsoft-api.md §1).
pub fn user_agent() -> String {
    format!("MdatpPartner-MdeWatch-mde-watch/{}", crate::VERSION)
}
