//! Lists for the pages and the API that cut across domains: which directives reach a
//! part of the tree.

use super::{Store, StoreError, with_pool};

impl Store {
    /// The ids of the most recent directives (newest first, at most `limit`); with
    /// `subtree` (a `[low, high)` path range, see
    /// [`subtree_range`](crate::org::tree::subtree_range)), only those with at least one
    /// targeted unit whose path lies in it.
    pub async fn recent_directive_ids(
        &self,
        subtree: Option<(String, String)>,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = with_pool!(self, |pool| {
            match &subtree {
                None => {
                    sqlx::query_scalar(
                        "SELECT id FROM directive ORDER BY created_at DESC, id DESC LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
                }
                Some((low, high)) => {
                    sqlx::query_scalar(
                        "SELECT d.id FROM directive d WHERE EXISTS (\
                           SELECT 1 FROM directive_inbox i JOIN org_unit u ON u.id = i.unit_id \
                           WHERE i.directive_id = d.id AND u.path >= $1 AND u.path < $2) \
                         ORDER BY d.created_at DESC, d.id DESC LIMIT $3",
                    )
                    .bind(low)
                    .bind(high)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
                }
            }
        });
        Ok(ids)
    }
}
