//! Meeting attendance: which targeted units are watching now (live connections per unit
//! and rolled up per subtree, from the hub's presence on `meeting:<id>`), the headcount a
//! unit's officer or screen enters for its room, the targeted units not connected and a
//! one-click reminder to them, the join/leave log, and the report after the meeting (per
//! unit: joined at, minutes watched, headcount, questions asked) as JSON and CSV.
//!
//! # Where the figures come from
//! - A connection watches for the unit named in its `meeting:<id>` subscription token's
//!   `info.unit` (set by `meeting.join` from the caller's own unit, never from what the
//!   client says). Connections without a unit (moderators, experts) are counted apart.
//! - **Live counts** read the hub's presence of `meeting:<id>` at the moment of the call.
//! - **The join/leave log** is written by [`AttendanceLog`], the node's presence observer
//!   (installed once per process by [`Services::log_attendance`]): every presence join and
//!   leave on a `meeting:` channel goes, in order, through one queue to the store. A
//!   connection that drops is a leave like an unsubscribe.
//! - **Minutes watched** per unit are the union of its connections' intervals (two
//!   screens of one unit at once count once), clipped to the time the meeting was live
//!   (from going live to its end, or now while it is live); a row still open counts
//!   until then. A meeting that never went live has nothing watched.
//!
//! Attendance is for the meeting's moderators; the headcount for the unit's own officer
//! or screen.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::directives::publish;
use super::http::{AppState, Reply, caller, ok, parse};
use super::meetings::{MeetingCall, csv_response, meeting_channel};
use super::rpc::method;
use super::{ServiceError, Services, now_ms, unit_channel};
use crate::auth::Principal;
use crate::node::{Node, PresenceObserver};
use crate::org::Unit;
use crate::org::tree::path_ids;
use crate::protocol::ClientInfo;
use crate::rpc::RpcRegistry;
use crate::store::{AttendanceRecord, Meeting, MeetingStatus, MeetingUnit};

/// One presence change on a meeting channel, queued for the store.
#[derive(Debug)]
enum Presence {
    Joined {
        meeting: String,
        client: String,
        account: String,
        unit: Option<String>,
        at: i64,
    },
    Left {
        meeting: String,
        client: String,
        at: i64,
    },
}

/// The presence observer that writes the meetings' join/leave log.
pub struct AttendanceLog {
    queue: mpsc::UnboundedSender<Presence>,
}

/// The unit a connection watches for, from its subscription's channel info.
fn watched_unit(info: &ClientInfo) -> Option<String> {
    let chan_info = info.chan_info.as_ref()?;
    let value: Value = serde_json::from_str(chan_info.get()).ok()?;
    value.get("unit")?.as_str().map(str::to_owned)
}

impl PresenceObserver for AttendanceLog {
    fn joined(&self, channel: &str, info: &ClientInfo) {
        if let Some(meeting) = channel.strip_prefix("meeting:") {
            let _ = self.queue.send(Presence::Joined {
                meeting: meeting.to_owned(),
                client: info.client.clone(),
                account: info.user.clone(),
                unit: watched_unit(info),
                at: now_ms(),
            });
        }
    }

    fn left(&self, channel: &str, info: &ClientInfo) {
        if let Some(meeting) = channel.strip_prefix("meeting:") {
            let _ = self.queue.send(Presence::Left {
                meeting: meeting.to_owned(),
                client: info.client.clone(),
                at: now_ms(),
            });
        }
    }
}

impl Services {
    /// Starts writing the join/leave log of every meeting from `node`'s presence (call
    /// once per process, inside the runtime). `false` when `node` has a presence observer
    /// already.
    pub fn log_attendance(self: &Arc<Self>, node: &Node) -> bool {
        let (queue, mut events) = mpsc::unbounded_channel();
        if !node.observe_presence(Arc::new(AttendanceLog { queue })) {
            return false;
        }
        let services = self.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                let written = match &event {
                    Presence::Joined {
                        meeting,
                        client,
                        account,
                        unit,
                        at,
                    } => {
                        services
                            .store
                            .attendance_join(meeting, client, account, unit.as_deref(), *at)
                            .await
                    }
                    Presence::Left {
                        meeting,
                        client,
                        at,
                    } => services.store.attendance_leave(meeting, client, *at).await,
                };
                if let Err(error) = written {
                    tracing::warn!(?event, %error, "attendance log write failed");
                }
            }
        });
        true
    }

    /// Live connections per unit of the meeting (and those watching for no unit).
    async fn live_connections(
        &self,
        node: &Node,
        meeting: &str,
    ) -> Result<(HashMap<String, usize>, usize), ServiceError> {
        let presence = node
            .presence(&meeting_channel(meeting))
            .await
            .map_err(|error| {
                tracing::error!(%meeting, ?error, "reading meeting presence");
                ServiceError::Internal
            })?;
        let mut per_unit: HashMap<String, usize> = HashMap::new();
        let mut without_unit = 0;
        for info in presence.values() {
            match watched_unit(info) {
                Some(unit) => *per_unit.entry(unit).or_default() += 1,
                None => without_unit += 1,
            }
        }
        Ok((per_unit, without_unit))
    }

    /// Who is watching now: every targeted unit with its live connections and headcount,
    /// the same rolled up per subtree (every unit on the path of a targeted unit), and
    /// the targeted units not connected.
    pub(super) async fn attendance(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        let (meeting, _) = self.moderated_meeting(who, id).await?;
        let targeted = self.store.meeting_units(id).await?;
        let names = self.unit_names().await?;
        let (live, without_unit) = self.live_connections(node, id).await?;
        let mut rollup: BTreeMap<String, (String, i64, i64, usize, i64)> = BTreeMap::new();
        let mut units = Vec::with_capacity(targeted.len());
        let mut not_connected = Vec::new();
        for unit in &targeted {
            let connections = live.get(&unit.unit_id).copied().unwrap_or(0);
            if connections == 0 {
                not_connected.push(unit.unit_id.clone());
            }
            units.push(json!({
                "unit": unit.unit_id,
                "name": name_of(&names, &unit.unit_id),
                "path": unit.unit_path,
                "connections": connections,
                "headcount": unit.headcount,
            }));
            // Each unit on the path, from the root down to the unit itself.
            let ids = path_ids(&unit.unit_path);
            for depth in 0..ids.len() {
                let path = format!("/{}/", ids[..=depth].join("/"));
                let entry = rollup
                    .entry(path)
                    .or_insert_with(|| (ids[depth].to_owned(), 0, 0, 0, 0));
                entry.1 += 1;
                entry.2 += i64::from(connections > 0);
                entry.3 += connections;
                entry.4 += unit.headcount.unwrap_or(0);
            }
        }
        let by_subtree: Vec<Value> = rollup
            .iter()
            .map(
                |(path, (unit, targeted, connected, connections, headcount))| {
                    json!({
                        "unit": unit,
                        "name": name_of(&names, unit),
                        "path": path,
                        "targeted_units": targeted,
                        "connected_units": connected,
                        "connections": connections,
                        "headcount": headcount,
                    })
                },
            )
            .collect();
        Ok(json!({
            "meeting": meeting.id,
            "status": meeting.status.as_str(),
            "targeted_units": targeted.len(),
            "connected_units": targeted.len() - not_connected.len(),
            "connections": live.values().sum::<usize>(),
            "connections_without_unit": without_unit,
            "units": units,
            "by_subtree": by_subtree,
            "not_connected": not_connected,
        }))
    }

    /// Reminds every targeted unit not connected now: a `meeting_reminder` on its
    /// `unit:<id>` channel. Returns the units reminded.
    pub(super) async fn remind_not_connected(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        let (meeting, access) = self.moderated_meeting(who, id).await?;
        if access.ended {
            return Err(ServiceError::Conflict(format!("meeting {id:?} has ended")));
        }
        let (live, _) = self.live_connections(node, id).await?;
        let push = json!({
            "type": "meeting_reminder",
            "meeting": {
                "id": meeting.id,
                "title": meeting.title,
                "starts_at": meeting.starts_at,
                "status": meeting.status.as_str(),
            },
        });
        let mut reminded = Vec::new();
        for unit in self.store.meeting_units(id).await? {
            if live.get(&unit.unit_id).copied().unwrap_or(0) == 0 {
                publish(node, &unit_channel(&unit.unit_id), &push).await;
                reminded.push(unit.unit_id);
            }
        }
        tracing::info!(meeting = %id, units = reminded.len(), by = %who.account_id, "meeting reminder sent");
        Ok(json!({"reminded": reminded}))
    }

    /// Records the number of people in a unit's room (the caller's unit unless named):
    /// only the unit's officers and its screens may; published on `meeting:<id>`.
    pub(super) async fn set_headcount(
        &self,
        node: &Node,
        who: &Principal,
        id: &str,
        unit: Option<&str>,
        headcount: i64,
    ) -> Result<Value, ServiceError> {
        self.store.require_meeting(id).await?;
        let unit = unit.or(who.unit.as_deref()).ok_or_else(|| {
            ServiceError::BadRequest("name the unit: your account belongs to none".into())
        })?;
        let screen = who.credential_id().is_some() && who.unit.as_deref() == Some(unit);
        if !(who.can_act_for(unit) || screen) {
            return Err(ServiceError::Forbidden(format!(
                "only an officer or the screen of unit {unit:?} reports its headcount"
            )));
        }
        if !self
            .store
            .set_headcount(id, unit, headcount, &who.account_id, now_ms())
            .await?
        {
            return Err(ServiceError::NotFound(format!(
                "meeting {id:?} does not target unit {unit:?}"
            )));
        }
        publish(
            node,
            &meeting_channel(id),
            &json!({"type": "headcount", "unit": unit, "headcount": headcount}),
        )
        .await;
        Ok(json!({"unit": unit, "headcount": headcount}))
    }

    /// The join/leave log, for the meeting's moderators.
    pub(super) async fn attendance_log(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        self.moderated_meeting(who, id).await?;
        let rows: Vec<Value> = self
            .store
            .attendance_log(id)
            .await?
            .iter()
            .map(|r| {
                json!({
                    "client": r.client_id,
                    "account": r.account_id,
                    "unit": r.unit_id,
                    "joined_at": r.joined_at,
                    "left_at": r.left_at,
                })
            })
            .collect();
        Ok(Value::Array(rows))
    }

    /// The report per targeted unit: first joined at, minutes watched, headcount,
    /// questions asked (see the module docs for how minutes are counted).
    pub(super) async fn attendance_report(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<Value, ServiceError> {
        let (meeting, _) = self.moderated_meeting(who, id).await?;
        let rows = self.report_rows(&meeting).await?;
        let units: Vec<Value> = rows
            .iter()
            .map(|row| {
                json!({
                    "unit": row.unit.unit_id,
                    "name": row.name,
                    "path": row.unit.unit_path,
                    "joined_at": row.joined_at,
                    "seconds_watched": row.watched_ms / 1000,
                    "minutes_watched": minutes(row.watched_ms),
                    "headcount": row.unit.headcount,
                    "questions_asked": row.questions,
                })
            })
            .collect();
        Ok(json!({
            "meeting": meeting.id,
            "title": meeting.title,
            "status": meeting.status.as_str(),
            "live_at": meeting.live_at,
            "ended_at": meeting.ended_at,
            "targeted_units": rows.len(),
            "joined_units": rows.iter().filter(|r| r.joined_at.is_some()).count(),
            "units": units,
        }))
    }

    /// [`Services::attendance_report`] as CSV.
    pub(super) async fn attendance_report_csv(
        &self,
        who: &Principal,
        id: &str,
    ) -> Result<String, ServiceError> {
        let (meeting, _) = self.moderated_meeting(who, id).await?;
        let rows = self.report_rows(&meeting).await?;
        let mut writer = csv::Writer::from_writer(Vec::new());
        let csv_error = |error: csv::Error| {
            tracing::error!(%error, "writing the attendance report");
            ServiceError::Internal
        };
        writer
            .write_record([
                "unit",
                "name",
                "joined_at",
                "minutes_watched",
                "headcount",
                "questions_asked",
            ])
            .map_err(csv_error)?;
        for row in &rows {
            writer
                .write_record([
                    row.unit.unit_id.clone(),
                    row.name.clone(),
                    row.joined_at.map(|t| t.to_string()).unwrap_or_default(),
                    format!("{:.2}", minutes(row.watched_ms)),
                    row.unit
                        .headcount
                        .map(|h| h.to_string())
                        .unwrap_or_default(),
                    row.questions.to_string(),
                ])
                .map_err(csv_error)?;
        }
        let bytes = writer.into_inner().map_err(|_| ServiceError::Internal)?;
        String::from_utf8(bytes).map_err(|_| ServiceError::Internal)
    }

    async fn report_rows(&self, meeting: &Meeting) -> Result<Vec<ReportRow>, ServiceError> {
        let names = self.unit_names().await?;
        let log = self.store.attendance_log(&meeting.id).await?;
        let questions: HashMap<String, i64> = self
            .store
            .questions_per_unit(&meeting.id)
            .await?
            .into_iter()
            .collect();
        let window = match (meeting.live_at, meeting.status) {
            (Some(live_at), MeetingStatus::Ended) => {
                Some((live_at, meeting.ended_at.unwrap_or(live_at)))
            }
            (Some(live_at), _) => Some((live_at, now_ms())),
            (None, _) => None,
        };
        Ok(self
            .store
            .meeting_units(&meeting.id)
            .await?
            .into_iter()
            .map(|unit| {
                let rows: Vec<&AttendanceRecord> = log
                    .iter()
                    .filter(|r| r.unit_id.as_deref() == Some(unit.unit_id.as_str()))
                    .collect();
                ReportRow {
                    name: name_of(&names, &unit.unit_id),
                    joined_at: rows.iter().map(|r| r.joined_at).min(),
                    watched_ms: window.map_or(0, |window| watched(&rows, window)),
                    questions: questions.get(&unit.unit_id).copied().unwrap_or(0),
                    unit,
                }
            })
            .collect())
    }

    /// Unit names by id.
    async fn unit_names(&self) -> Result<HashMap<String, String>, ServiceError> {
        Ok(self
            .store
            .all_units()
            .await?
            .into_iter()
            .map(|Unit { id, name, .. }| (id, name))
            .collect())
    }
}

/// One targeted unit's line of the report.
struct ReportRow {
    unit: MeetingUnit,
    name: String,
    joined_at: Option<i64>,
    watched_ms: i64,
    questions: i64,
}

fn name_of(names: &HashMap<String, String>, unit: &str) -> String {
    names.get(unit).cloned().unwrap_or_default()
}

/// Minutes, rounded to hundredths.
fn minutes(ms: i64) -> f64 {
    (ms as f64 / 600.0).round() / 100.0
}

/// Milliseconds covered by the union of the rows' intervals inside `window` (a row still
/// open runs to the window's end).
fn watched(rows: &[&AttendanceRecord], (start, end): (i64, i64)) -> i64 {
    let mut intervals: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| (r.joined_at.max(start), r.left_at.unwrap_or(end).min(end)))
        .filter(|(from, to)| from < to)
        .collect();
    intervals.sort_unstable();
    let mut total = 0;
    let mut current: Option<(i64, i64)> = None;
    for (from, to) in intervals {
        current = match current {
            Some((a, b)) if from <= b => Some((a, b.max(to))),
            Some((a, b)) => {
                total += b - a;
                Some((from, to))
            }
            None => Some((from, to)),
        };
    }
    total + current.map_or(0, |(a, b)| b - a)
}

/// The attendance routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/meetings/{id}/attendance", get(attendance))
        .route("/api/v1/meetings/{id}/attendance/log", get(attendance_log))
        .route("/api/v1/meetings/{id}/headcount", post(set_headcount))
        .route("/api/v1/meetings/{id}/remind", post(remind))
        .route("/api/v1/meetings/{id}/report", get(report))
        .route("/api/v1/meetings/{id}/report.csv", get(report_csv))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadcountRequest {
    #[serde(default)]
    unit: Option<String>,
    headcount: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadcountCall {
    meeting: String,
    #[serde(default)]
    unit: Option<String>,
    headcount: i64,
}

async fn attendance(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.attendance(&state.node, &who, &id).await?)
}

async fn attendance_log(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.attendance_log(&who, &id).await?)
}

async fn set_headcount(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let request: HeadcountRequest = parse(&headers, &body)?;
    ok(state
        .services
        .set_headcount(
            &state.node,
            &who,
            &id,
            request.unit.as_deref(),
            request.headcount,
        )
        .await?)
}

async fn remind(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state
        .services
        .remind_not_connected(&state.node, &who, &id)
        .await?)
}

async fn report(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    ok(state.services.attendance_report(&who, &id).await?)
}

async fn report_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    let who = caller(&state, &headers).await?;
    let text = state.services.attendance_report_csv(&who, &id).await?;
    csv_response(&format!("attendance-{id}.csv"), text)
}

/// Registers the `attendance.*` RPC methods.
pub(super) fn register_rpc(services: &Arc<Services>, registry: &mut RpcRegistry) {
    method(
        services,
        registry,
        "attendance.get",
        |s, node, who, call: MeetingCall| async move { s.attendance(&node, &who, &call.meeting).await },
    );
    method(
        services,
        registry,
        "attendance.log",
        |s, _node, who, call: MeetingCall| async move { s.attendance_log(&who, &call.meeting).await },
    );
    method(
        services,
        registry,
        "attendance.headcount",
        |s, node, who, call: HeadcountCall| async move {
            s.set_headcount(
                &node,
                &who,
                &call.meeting,
                call.unit.as_deref(),
                call.headcount,
            )
            .await
        },
    );
    method(
        services,
        registry,
        "attendance.remind",
        |s, node, who, call: MeetingCall| async move {
            s.remind_not_connected(&node, &who, &call.meeting).await
        },
    );
    method(
        services,
        registry,
        "attendance.report",
        |s, _node, who, call: MeetingCall| async move { s.attendance_report(&who, &call.meeting).await },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(joined_at: i64, left_at: Option<i64>) -> AttendanceRecord {
        AttendanceRecord {
            meeting_id: "m".into(),
            client_id: format!("c{joined_at}"),
            account_id: "a".into(),
            unit_id: Some("u".into()),
            joined_at,
            left_at,
        }
    }

    #[test]
    fn watched_time_is_the_union_of_intervals_inside_the_live_window() {
        let rows = [
            row(0, Some(50)),    // before live: 10..50 counts
            row(40, Some(80)),   // overlaps the first: union 10..80
            row(100, Some(120)), // separate: 20
            row(110, None),      // open: runs to the end (200)
            row(300, Some(400)), // after the end: nothing
        ];
        let refs: Vec<&AttendanceRecord> = rows.iter().collect();
        assert_eq!(watched(&refs, (10, 200)), 70 + 100);
        assert_eq!(watched(&[], (10, 200)), 0);
        assert_eq!(minutes(90_000), 1.5);
        assert_eq!(minutes(1_000), 0.02);
    }
}
