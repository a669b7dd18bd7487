// org-tree.js — the org tree on the client: index the units `/api/v1/org/units` returns,
// resolve a directive's target the way the hub does (so the console can show how many
// units a send will reach before it is sent), and sum unit states per subtree and level
// for the acknowledgement map, as `hub/src/directive/rollup.rs` does. Pure: no DOM, no IO.
//
// A unit is {id, parent, level, kind, name, tags, path}; `path` is `/root/…/id/`.
// A state is {unit_id, stage, delivered_at, read_at, acked_at, acked_by}.

/** The levels, top first. */
export const LEVELS = Object.freeze(["headquarters", "city", "county", "unit"]);

/** Stages of a unit's state, in order. */
export const STAGES = Object.freeze(["pending", "delivered", "read", "acknowledged"]);

/** The ids along a materialised path, root first: "/a/b/c/" → ["a", "b", "c"]. */
export function pathIds(path) {
  return String(path ?? "")
    .split("/")
    .filter((id) => id !== "");
}

/**
 * An index over `units`: `byId`, `children` (id → child ids, in the order given, which
 * is path order from the API), `roots` (units whose parent is not among them — the whole
 * tree's root for an admin, a moderator's subtree root) and `units` sorted by path.
 */
export function indexUnits(units) {
  const sorted = [...units].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const byId = new Map(sorted.map((unit) => [unit.id, unit]));
  const children = new Map(sorted.map((unit) => [unit.id, []]));
  const roots = [];
  for (const unit of sorted) {
    const siblings = unit.parent != null ? children.get(unit.parent) : undefined;
    if (siblings) siblings.push(unit.id);
    else roots.push(unit.id);
  }
  return { units: sorted, byId, children, roots };
}

/** Whether `unit` is `root` or below it (by path; paths end in "/"). */
export function isInSubtree(unit, root) {
  return Boolean(unit && root && unit.path.startsWith(root.path));
}

/** Number of units in each unit's subtree, itself included: Map id → count. */
export function subtreeSizes(index) {
  const sizes = new Map(index.units.map((unit) => [unit.id, 0]));
  for (const unit of index.units) {
    for (const id of pathIds(unit.path)) {
      if (sizes.has(id)) sizes.set(id, sizes.get(id) + 1);
    }
  }
  return sizes;
}

/** Sorted distinct kinds and tags among `units`. */
export function kindsAndTags(units) {
  const kinds = new Set();
  const tags = new Set();
  for (const unit of units) {
    kinds.add(unit.kind);
    for (const tag of unit.tags ?? []) tags.add(tag);
  }
  return { kinds: [...kinds].sort(), tags: [...tags].sort() };
}

/**
 * The chosen subtree roots without those already covered by another chosen root (so a
 * city and one of its counties both checked send just the city). Path order.
 */
export function topmostSelected(index, selected) {
  const chosen = [...selected].map((id) => index.byId.get(id)).filter(Boolean);
  return chosen
    .filter((unit) => !chosen.some((other) => other !== unit && unit.path.startsWith(other.path)))
    .sort((a, b) => (a.path < b.path ? -1 : 1))
    .map((unit) => unit.id);
}

/**
 * The ids `target` ({subtrees, kinds, tags, units}) reaches among the indexed units, in
 * path order — the same rule as the hub's `Target::resolve`: units named one by one,
 * plus, when subtrees, kinds or tags are given, every unit inside one of the subtrees (all
 * units when none is given) whose kind is one of `kinds` (any when none) and that carries
 * one of `tags` (any when none). Unknown ids are ignored here; the hub refuses them.
 */
export function resolveTarget(index, target) {
  const subtrees = target?.subtrees ?? [];
  const kinds = target?.kinds ?? [];
  const tags = target?.tags ?? [];
  const named = target?.units ?? [];
  const chosen = new Set(named.filter((id) => index.byId.has(id)));
  const roots = subtrees.map((id) => index.byId.get(id)).filter(Boolean);
  const filtered = subtrees.length > 0 || kinds.length > 0 || tags.length > 0;
  if (filtered) {
    for (const unit of index.units) {
      const inScope = subtrees.length === 0 || roots.some((root) => unit.path.startsWith(root.path));
      const kindOk = kinds.length === 0 || kinds.includes(unit.kind);
      const tagOk = tags.length === 0 || (unit.tags ?? []).some((tag) => tags.includes(tag));
      if (inScope && kindOk && tagOk) chosen.add(unit.id);
    }
  }
  return index.units.filter((unit) => chosen.has(unit.id)).map((unit) => unit.id);
}

/** A stage from a state's timestamps (the hub's `UnitState::stage`). */
export function stageOf(state) {
  if (state?.acked_at != null) return "acknowledged";
  if (state?.read_at != null) return "read";
  if (state?.delivered_at != null) return "delivered";
  return "pending";
}

/** Whether `state` is overdue at `now` for `directive` ({ack_required, deadline}). */
export function isOverdue(directive, state, now) {
  return Boolean(
    directive?.ack_required && state?.acked_at == null && directive.deadline != null && now > directive.deadline,
  );
}

function emptyTally() {
  return { targeted: 0, delivered: 0, read: 0, acknowledged: 0, overdue: 0, ackMs: [] };
}

function addTo(tally, stage, overdue, ackMs) {
  const rank = STAGES.indexOf(stage);
  tally.targeted += 1;
  tally.delivered += rank >= 1 ? 1 : 0;
  tally.read += rank >= 2 ? 1 : 0;
  tally.acknowledged += rank === 3 ? 1 : 0;
  tally.overdue += overdue ? 1 : 0;
  if (ackMs != null) tally.ackMs.push(ackMs);
}

function finish(tally) {
  const sorted = tally.ackMs.sort((a, b) => a - b);
  const n = sorted.length;
  let median = null;
  if (n % 2 === 1) median = sorted[(n - 1) / 2];
  else if (n > 0) median = Math.floor((sorted[n / 2 - 1] + sorted[n / 2]) / 2);
  return {
    targeted: tally.targeted,
    delivered: tally.delivered,
    read: tally.read,
    acknowledged: tally.acknowledged,
    overdue: tally.overdue,
    median_ack_ms: median,
  };
}

/**
 * Sums `states` (one per targeted unit) of `directive` ({created_at, ack_required,
 * deadline}) at `now`: `total`, `byLevel` (level → counts), `bySubtree` (unit id → counts
 * over the targeted units at or below it) and `notAcknowledged` (ids in path order, only
 * when acknowledgement is required). Counts are {targeted, delivered, read, acknowledged,
 * overdue, median_ack_ms}, as the dashboard call returns them.
 */
export function rollup(index, states, directive, now = Date.now()) {
  const total = emptyTally();
  const byLevel = new Map();
  const bySubtree = new Map();
  const notAcknowledged = [];
  for (const state of states) {
    const stage = stageOf(state);
    const overdue = isOverdue(directive, state, now);
    const ackMs = state.acked_at != null ? state.acked_at - (directive?.created_at ?? 0) : null;
    addTo(total, stage, overdue, ackMs);
    const unit = index.byId.get(state.unit_id);
    if (directive?.ack_required && state.acked_at == null) {
      notAcknowledged.push({ path: unit?.path ?? "", id: state.unit_id });
    }
    if (!unit) continue;
    if (!byLevel.has(unit.level)) byLevel.set(unit.level, emptyTally());
    addTo(byLevel.get(unit.level), stage, overdue, ackMs);
    for (const id of pathIds(unit.path)) {
      if (!bySubtree.has(id)) bySubtree.set(id, emptyTally());
      addTo(bySubtree.get(id), stage, overdue, ackMs);
    }
  }
  notAcknowledged.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : a.id < b.id ? -1 : 1));
  return {
    total: finish(total),
    byLevel: new Map([...byLevel].map(([level, tally]) => [level, finish(tally)])),
    bySubtree: new Map([...bySubtree].map(([id, tally]) => [id, finish(tally)])),
    notAcknowledged: notAcknowledged.map((entry) => entry.id),
  };
}

/** The share of `counts.targeted` that acknowledged, 0…1 (0 when nothing is targeted). */
export function ackFraction(counts) {
  return counts && counts.targeted > 0 ? counts.acknowledged / counts.targeted : 0;
}

/** A heat level 0…5 for a fraction: 0 is none, 5 is all, 1–4 the quarters between. */
export function heatLevel(fraction) {
  if (!(fraction > 0)) return 0;
  if (fraction >= 1) return 5;
  return 1 + Math.min(3, Math.floor(fraction * 4));
}
