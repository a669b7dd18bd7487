// Unit tests of the directive pages' pure modules (web/static/markdown.js and
// org-tree.js) under Node: `node --test tests/web/directive_modules.test.mjs`.
// The same modules are also checked in Chromium, with the DOM, by directive_modules.mjs.

import assert from "node:assert/strict";
import fs from "node:fs";
import test from "node:test";

/** Imports a module of web/static/ (they import nothing themselves). Through a data: URL,
 * because that folder has no package.json saying its .js files are ES modules. */
async function load(name) {
  const source = fs.readFileSync(new URL(`../../web/static/${name}`, import.meta.url), "utf8");
  return import(`data:text/javascript;charset=utf-8,${encodeURIComponent(source)}`);
}

const { isSafeUrl, parse, toHtml } = await load("markdown.js");
const { heatLevel, indexUnits, resolveTarget, rollup, subtreeSizes, topmostSelected } = await load("org-tree.js");

const html = (source) => toHtml(parse(source));

test("HTML in the input is text", () => {
  assert.equal(html("<img src=x onerror=alert(1)>"), "<p>&lt;img src=x onerror=alert(1)&gt;</p>");
  assert.equal(html("<script>alert(1)</script>"), "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>");
  assert.equal(html('**"quoted" & \'single\'**'), "<p><strong>&quot;quoted&quot; &amp; &#39;single&#39;</strong></p>");
});

test("only http(s) links survive, keeping their text otherwise", () => {
  assert.equal(html("[x](javascript:alert(1))"), "<p>x</p>");
  assert.equal(html("[x](JaVaScRiPt:alert(1))"), "<p>x</p>");
  assert.equal(html("[x](data:text/html,<b>)"), "<p>x</p>");
  assert.equal(html("[x](//evil.example/)"), "<p>x</p>");
  assert.equal(html('[x](https://ok.example/" onmouseover="alert(1))'), "<p>x</p>");
  assert.equal(
    html("[官网](https://example.org/a_(b)?q=1&r=2)"),
    '<p><a href="https://example.org/a_(b)?q=1&amp;r=2" rel="noopener noreferrer" target="_blank">官网</a></p>',
  );
  assert.ok(isSafeUrl("http://example.org"));
  assert.ok(!isSafeUrl("javascript:alert(1)"));
  assert.ok(!isSafeUrl("https://exa mple.org"));
});

test("the subset: paragraphs, breaks, headings, lists, emphasis, code", () => {
  assert.equal(
    html("# 通知\n\n请各单位**今晚**落实*值班*。\n第二行\n\n- 一\n- 二\n\n1. 甲\n2. 乙\n\n`<b>`"),
    "<h1>通知</h1><p>请各单位<strong>今晚</strong>落实<em>值班</em>。<br>第二行</p>" +
      "<ul><li>一</li><li>二</li></ul><ol><li>甲</li><li>乙</li></ol><p><code>&lt;b&gt;</code></p>",
  );
  assert.equal(html("**not closed *either"), "<p>**not closed *either</p>");
  assert.equal(html("\\*literal\\*"), "<p>*literal*</p>");
  assert.equal(html(""), "");
});

// A small tree shaped like the demo organisation.
const UNITS = [
  { id: "sx", parent: null, level: "headquarters", kind: "headquarters", tags: [], path: "/sx/" },
  { id: "xian", parent: "sx", level: "city", kind: "city_office", tags: ["关中"], path: "/sx/xian/" },
  { id: "xian-01", parent: "xian", level: "county", kind: "county_office", tags: [], path: "/sx/xian/xian-01/" },
  { id: "stn-1", parent: "xian-01", level: "unit", kind: "station", tags: [], path: "/sx/xian/xian-01/stn-1/" },
  { id: "ent-1", parent: "xian-01", level: "unit", kind: "enterprise", tags: ["重点"], path: "/sx/xian/xian-01/ent-1/" },
  { id: "uni-1", parent: "xian", level: "unit", kind: "university", tags: ["重点"], path: "/sx/xian/uni-1/" },
  { id: "xian1", parent: "sx", level: "city", kind: "city_office", tags: [], path: "/sx/xian1/" },
  { id: "stn-2", parent: "xian1", level: "unit", kind: "station", tags: [], path: "/sx/xian1/stn-2/" },
].map((unit) => ({ name: unit.id, ...unit }));

test("target resolution follows the hub's rule", () => {
  const index = indexUnits(UNITS);
  assert.deepEqual(index.roots, ["sx"]);
  assert.deepEqual(resolveTarget(index, { subtrees: ["xian"] }), ["xian", "uni-1", "xian-01", "ent-1", "stn-1"]);
  // "/sx/xian/" must not match "/sx/xian1/".
  assert.ok(!resolveTarget(index, { subtrees: ["xian"] }).includes("stn-2"));
  assert.deepEqual(resolveTarget(index, { subtrees: ["xian"], kinds: ["station"] }), ["stn-1"]);
  assert.deepEqual(resolveTarget(index, { kinds: ["station"] }), ["stn-1", "stn-2"]);
  assert.deepEqual(resolveTarget(index, { tags: ["重点"] }), ["uni-1", "ent-1"]);
  assert.deepEqual(resolveTarget(index, { subtrees: ["xian1"], units: ["uni-1"] }), ["uni-1", "xian1", "stn-2"]);
  assert.deepEqual(resolveTarget(index, {}), []);
  assert.equal(subtreeSizes(index).get("sx"), UNITS.length);
  assert.equal(subtreeSizes(index).get("xian-01"), 3);
  assert.deepEqual(topmostSelected(index, new Set(["xian-01", "xian", "stn-2"])), ["xian", "stn-2"]);
});

test("the roll-up counts stages per level and subtree, with the median", () => {
  const index = indexUnits(UNITS);
  const directive = { created_at: 1000, ack_required: true, deadline: 5000 };
  const states = [
    { unit_id: "xian", delivered_at: 1100, read_at: 1200, acked_at: 2000 },
    { unit_id: "xian-01", delivered_at: 1100, read_at: null, acked_at: null },
    { unit_id: "stn-1", delivered_at: 1100, read_at: 1150, acked_at: 4000 },
    { unit_id: "ent-1", delivered_at: null, read_at: null, acked_at: null },
  ];
  const summary = rollup(index, states, directive, 6000);
  assert.deepEqual(summary.total, { targeted: 4, delivered: 3, read: 2, acknowledged: 2, overdue: 2, median_ack_ms: 2000 });
  assert.equal(summary.byLevel.get("unit").targeted, 2);
  assert.equal(summary.bySubtree.get("xian-01").acknowledged, 1);
  assert.deepEqual(summary.notAcknowledged, ["xian-01", "ent-1"]);
  assert.equal(rollup(index, states, directive, 4000).total.overdue, 0);
  assert.deepEqual([0, 0.1, 0.25, 0.5, 0.99, 1].map(heatLevel), [0, 1, 2, 3, 4, 5]);
});
