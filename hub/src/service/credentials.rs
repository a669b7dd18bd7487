//! Meeting-room credentials issued over the API: an admin, or a moderator whose subtree
//! holds the unit, gets a long-lived credential for the unit's screen, its join link and
//! the link as a QR code (SVG) to scan or print. The secret is shown once.

use qrcode::QrCode;
use qrcode::render::{svg, unicode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ServiceError, Services, now_ms};
use crate::auth::{Principal, Role};

/// What the caller says about the credential.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssueRequest {
    /// Where the screen is, e.g. "meeting room 2" (default "meeting room").
    #[serde(default)]
    pub label: Option<String>,
}

impl Services {
    /// Issues a credential for `unit`'s screen. `base_url` (`http://host:port`) makes the
    /// join link absolute.
    pub async fn issue_credential(
        &self,
        who: &Principal,
        unit: &str,
        request: IssueRequest,
        base_url: &str,
    ) -> Result<Value, ServiceError> {
        let found = self.store.require_unit(unit).await?;
        if !matches!(who.role, Role::Admin | Role::Moderator) || !who.can_address(&found) {
            return Err(ServiceError::Forbidden(format!(
                "only an administrator or a moderator of unit {unit:?} issues its credentials"
            )));
        }
        let label = request.label.unwrap_or_else(|| "meeting room".to_owned());
        let issued = self
            .store
            .issue_unit_credential(unit, &label, &who.account_id, now_ms())
            .await?;
        let join_link = join_link(base_url, &issued.secret);
        Ok(json!({
            "id": issued.id,
            "unit": unit,
            "label": label,
            "credential": issued.secret,
            "join_link": join_link,
            "qr_svg": qr_svg(&join_link)?,
        }))
    }
}

/// The page a screen opens to log in with its credential.
pub fn join_link(base_url: &str, credential: &str) -> String {
    format!(
        "{}/inbox?credential={credential}",
        base_url.trim_end_matches('/')
    )
}

/// `text` as a QR code in SVG, at least 256 pixels wide.
pub fn qr_svg(text: &str) -> Result<String, ServiceError> {
    let code = QrCode::new(text.as_bytes()).map_err(|error| {
        tracing::error!(%error, "cannot make a QR code");
        ServiceError::Internal
    })?;
    Ok(code.render::<svg::Color>().min_dimensions(256, 256).build())
}

/// `text` as a QR code drawn with block characters, for a terminal (dark modules as
/// `█`/`▀`/`▄` on a light background).
pub fn qr_terminal(text: &str) -> Option<String> {
    let code = QrCode::new(text.as_bytes()).ok()?;
    Some(code.render::<unicode::Dense1x2>().quiet_zone(true).build())
}
