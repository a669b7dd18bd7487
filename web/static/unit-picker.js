// unit-picker.js — the org-tree picker that chooses an audience "as for directives", shared
// by the directive console (`/console`, a directive's target) and the meeting console
// (`/meeting-console`, a meeting's): kind and tag filters as chips, the tree with a
// checkbox per subtree (a unit under a ticked subtree shows ticked and locked; subtrees
// open and close), a live count of the units the choice reaches and a Clear button. DOM
// only: indexing, sizes and target resolution are org-tree.js's (the hub's rule).
//
// `new UnitPicker(container, {units, t, lang, onChange})` builds the picker at the end of
// `container` from the units `GET /api/v1/org/units` returns. `t` is the page's translator:
// merge `PICKER_TEXT` into the page's dictionary, and give it `targetCount` ("{n} …", the
// page's wording of the count) and `targetNone` (nothing chosen yet); kind names are
// `kind.<kind>` (directive-text.js). `lang()` is the page's language, for numbers.
// `onChange()` runs after every change of the choice. `target()` is the choice as the hub
// takes it (`{subtrees, kinds, tags, units}`) or null; `count()` the number of units it
// reaches; `clear()` unticks everything; `renderText()` redraws the count after a language
// switch (labels carry `data-i18n`, which the page's `applyText` redraws); `remove()` takes
// the picker off the page.
//
// Test ids: `kind-filters`, `kind-<kind>`, `tag-filters`, `tag-<tag>`, `tree`, `pick-<unit>`,
// `expand-<unit>`, `target-count` (`data-value`: the count) and `clear-target`.

import { formatCount } from "./i18n.js";
import { indexUnits, kindsAndTags, pathIds, resolveTarget, subtreeSizes, topmostSelected } from "./org-tree.js";

/** The picker's own words; each page adds `targetCount` and `targetNone`. */
export const PICKER_TEXT = {
  en: {
    kindFilter: "Only units of kind",
    tagFilter: "Only units tagged",
    clearTarget: "Clear",
    expand: "Show the units below {name}",
  },
  "zh-CN": {
    kindFilter: "仅限单位类型",
    tagFilter: "仅限标签",
    clearTarget: "清除",
    expand: "展开 {name} 的下级单位",
  },
};

function element(tag, { className, testId, i18n } = {}) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (testId) made.dataset.testid = testId;
  if (i18n) made.dataset.i18n = i18n;
  return made;
}

export class UnitPicker {
  #t;
  #lang;
  #onChange;
  #index;
  #sizes;
  #selected = new Set();
  #kinds = new Set();
  #tags = new Set();
  #expanded;
  /** Tree checkboxes by unit id, for those rendered so far. */
  #checkboxes = new Map();
  #root;
  #tree;
  #count;

  constructor(container, { units, t, lang, onChange }) {
    this.#t = t;
    this.#lang = lang;
    this.#onChange = onChange;
    this.#index = indexUnits(units);
    this.#sizes = subtreeSizes(this.#index);
    this.#expanded = new Set(this.#index.roots);

    const { kinds, tags } = kindsAndTags(this.#index.units);
    const filters = element("div", { className: "picker-filters" });
    const kindFilters = this.#filters(kinds, this.#kinds, "kind", "kindFilter", (kind) => `kind.${kind}`);
    const tagFilters = this.#filters(tags, this.#tags, "tag", "tagFilter", null);
    tagFilters.hidden = tags.length === 0;
    filters.append(kindFilters, tagFilters);

    this.#tree = element("ul", { className: "tree", testId: "tree" });
    this.#tree.role = "tree";

    const summary = element("p", { className: "target-summary" });
    this.#count = element("output", { testId: "target-count" });
    const clear = element("button", { className: "link-button", testId: "clear-target", i18n: "clearTarget" });
    clear.type = "button";
    clear.textContent = t("clearTarget");
    clear.addEventListener("click", () => this.clear());
    summary.append(this.#count, " ", clear);

    this.#root = element("div", { className: "unit-picker" });
    this.#root.append(filters, this.#tree, summary);
    container.append(this.#root);
    this.#renderTree();
    this.renderText();
  }

  /** The choice as the hub takes it, or null when nothing is chosen. */
  target() {
    const subtrees = topmostSelected(this.#index, this.#selected);
    const kinds = [...this.#kinds].sort();
    const tags = [...this.#tags].sort();
    if (subtrees.length === 0 && kinds.length === 0 && tags.length === 0) return null;
    // Kinds or tags alone mean "within everything I may address".
    return { subtrees: subtrees.length > 0 ? subtrees : [...this.#index.roots], kinds, tags, units: [] };
  }

  /** How many units the choice reaches (0 when nothing is chosen). */
  count() {
    const target = this.target();
    return target ? resolveTarget(this.#index, target).length : 0;
  }

  /** Unticks every subtree, kind and tag. */
  clear() {
    this.#selected.clear();
    this.#kinds.clear();
    this.#tags.clear();
    for (const box of this.#root.querySelectorAll(".chip input")) box.checked = false;
    this.#updateChecks();
    this.#changed();
  }

  /** Writes the count in the page's current language. */
  renderText() {
    const target = this.target();
    const count = target ? resolveTarget(this.#index, target).length : 0;
    this.#count.dataset.value = String(count);
    this.#count.textContent = target ? this.#t("targetCount", { n: formatCount(count, this.#lang()) }) : this.#t("targetNone");
  }

  remove() {
    this.#root.remove();
  }

  #changed() {
    this.renderText();
    this.#onChange();
  }

  #filters(values, chosen, prefix, labelKey, textKey) {
    const group = element("div", { className: "filter-group", testId: `${prefix}-filters` });
    const label = element("span", { className: "field-label", i18n: labelKey });
    label.textContent = this.#t(labelKey);
    group.append(label);
    for (const value of values) {
      const chip = element("label", { className: "chip" });
      const box = element("input", { testId: `${prefix}-${value}` });
      box.type = "checkbox";
      box.value = value;
      box.addEventListener("change", () => {
        if (box.checked) chosen.add(value);
        else chosen.delete(value);
        this.#changed();
      });
      const name = element("span", { i18n: textKey ? textKey(value) : undefined });
      name.textContent = textKey ? this.#t(textKey(value)) : value;
      chip.append(box, name);
      group.append(chip);
    }
    return group;
  }

  #renderTree() {
    this.#checkboxes.clear();
    this.#tree.replaceChildren(...this.#index.roots.map((id) => this.#treeItem(id)));
    this.#updateChecks();
  }

  #treeItem(id) {
    const unit = this.#index.byId.get(id);
    const children = this.#index.children.get(id) ?? [];
    const item = document.createElement("li");
    item.role = "treeitem";
    item.dataset.unit = id;
    const row = element("div", { className: "tree-row" });
    if (children.length > 0) {
      const toggle = element("button", { className: "tree-toggle", testId: `expand-${id}` });
      toggle.type = "button";
      toggle.setAttribute("aria-label", this.#t("expand", { name: unit.name }));
      toggle.addEventListener("click", () => {
        if (this.#expanded.has(id)) this.#expanded.delete(id);
        else this.#expanded.add(id);
        item.replaceWith(this.#treeItem(id));
        this.#updateChecks();
      });
      row.append(toggle);
    } else {
      row.append(element("span", { className: "tree-spacer" }));
    }
    const label = document.createElement("label");
    const box = element("input", { testId: `pick-${id}` });
    box.type = "checkbox";
    box.addEventListener("change", () => {
      if (box.checked) this.#selected.add(id);
      else this.#selected.delete(id);
      this.#updateChecks();
      this.#changed();
    });
    this.#checkboxes.set(id, box);
    const name = document.createElement("span");
    name.textContent = unit.name;
    const size = element("span", { className: "tree-count" });
    size.textContent = formatCount(this.#sizes.get(id) ?? 1, this.#lang());
    label.append(box, name, size);
    row.append(label);
    item.append(row);
    if (children.length > 0) {
      const expanded = this.#expanded.has(id);
      item.setAttribute("aria-expanded", String(expanded));
      if (expanded) {
        const group = document.createElement("ul");
        group.role = "group";
        group.append(...children.map((child) => this.#treeItem(child)));
        item.append(group);
      }
    }
    return item;
  }

  /** A checkbox under a ticked subtree shows ticked and cannot be changed. */
  #updateChecks() {
    for (const [id, box] of this.#checkboxes) {
      if (!box.isConnected) {
        this.#checkboxes.delete(id);
        continue;
      }
      const unit = this.#index.byId.get(id);
      const covered = pathIds(unit.path)
        .slice(0, -1)
        .some((ancestor) => this.#selected.has(ancestor));
      box.checked = covered || this.#selected.has(id);
      box.disabled = covered;
    }
  }
}
