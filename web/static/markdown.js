// markdown.js — the small Markdown subset directives are written in, rendered safely.
//
// Supported: paragraphs (a blank line between them; a single line break stays a break),
// headings (`#`, `##`, `###`), bulleted (`- `, `* `, `+ `) and numbered (`1. `) lists,
// **bold**, *emphasis*, `code`, [links](https://…) and `\` to escape a marker character.
// Nothing else: HTML in the input is text, and a link whose address is not http(s) keeps
// its text and loses the link.
//
// Safety by construction: `parse()` turns the text into a tree of plain objects, and
// `toDom()` builds elements with `createElement` and `textContent` — the input is never
// handed to an HTML parser. `toHtml()` (for tests and non-DOM uses) escapes every text and
// attribute value.
//
// Node types: {type:"p"|"h1"|"h2"|"h3"|"ul"|"ol"|"li"|"strong"|"em", children:[…]},
// {type:"text", text}, {type:"code", text}, {type:"br"}, {type:"a", href, children}.

/** Whether `href` is an absolute http(s) address without spaces or quotes. */
export function isSafeUrl(href) {
  const text = String(href ?? "");
  if (!/^https?:\/\/[^\s<>"'`\\]+$/i.test(text)) return false;
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

const ESCAPABLE = "\\`*_[]()#+-.!";

/** Parses inline markup in `text` into nodes. */
export function parseInline(text) {
  const nodes = [];
  let buffer = "";
  const flush = () => {
    if (buffer) nodes.push({ type: "text", text: buffer });
    buffer = "";
  };
  let i = 0;
  while (i < text.length) {
    const ch = text[i];
    if (ch === "\\" && i + 1 < text.length && ESCAPABLE.includes(text[i + 1])) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === "`") {
      const close = text.indexOf("`", i + 1);
      if (close > i + 1) {
        flush();
        nodes.push({ type: "code", text: text.slice(i + 1, close) });
        i = close + 1;
        continue;
      }
    }
    if (text.startsWith("**", i)) {
      const close = text.indexOf("**", i + 2);
      if (close > i + 2) {
        flush();
        nodes.push({ type: "strong", children: parseInline(text.slice(i + 2, close)) });
        i = close + 2;
        continue;
      }
    }
    if (ch === "*" && text[i + 1] !== "*" && text[i + 1] !== " " && text[i + 1] !== undefined) {
      const close = findSingle(text, "*", i + 1);
      if (close > i + 1) {
        flush();
        nodes.push({ type: "em", children: parseInline(text.slice(i + 1, close)) });
        i = close + 1;
        continue;
      }
    }
    if (ch === "[") {
      const link = parseLink(text, i);
      if (link) {
        flush();
        const children = parseInline(link.label);
        if (isSafeUrl(link.href)) nodes.push({ type: "a", href: link.href, children });
        else nodes.push(...children);
        i = link.end;
        continue;
      }
    }
    buffer += ch;
    i += 1;
  }
  flush();
  return nodes;
}

/** The index of a lone `marker` (not doubled) at or after `from`, or -1. */
function findSingle(text, marker, from) {
  for (let at = text.indexOf(marker, from); at >= 0; at = text.indexOf(marker, at + 2)) {
    if (text[at + 1] !== marker && text[at - 1] !== marker && text[at - 1] !== " ") return at;
  }
  return -1;
}

/** `[label](href)` starting at `start`: {label, href, end} or null. */
function parseLink(text, start) {
  const labelEnd = text.indexOf("]", start + 1);
  if (labelEnd < 0 || text[labelEnd + 1] !== "(") return null;
  // The address ends at the `)` that balances the `(`: "(https://x/a_(b))" keeps "(b)".
  let depth = 0;
  let hrefEnd = -1;
  for (let at = labelEnd + 2; at < text.length; at += 1) {
    if (text[at] === "(") depth += 1;
    else if (text[at] === ")" && depth-- === 0) {
      hrefEnd = at;
      break;
    }
  }
  if (hrefEnd < 0) return null;
  return {
    label: text.slice(start + 1, labelEnd),
    href: text.slice(labelEnd + 2, hrefEnd).trim(),
    end: hrefEnd + 1,
  };
}

const BULLET = /^\s{0,3}[-*+]\s+(.*)$/;
const NUMBERED = /^\s{0,3}\d{1,9}[.)]\s+(.*)$/;
const HEADING = /^\s{0,3}(#{1,3})\s+(.*?)\s*#*\s*$/;

/** Parses `source` into block nodes. */
export function parse(source) {
  const lines = String(source ?? "")
    .replace(/\r\n?/g, "\n")
    .split("\n");
  const blocks = [];
  let paragraph = [];
  let list = null; // {type: "ul"|"ol", children}
  const endParagraph = () => {
    if (paragraph.length === 0) return;
    const children = [];
    paragraph.forEach((line, index) => {
      if (index > 0) children.push({ type: "br" });
      children.push(...parseInline(line.trim()));
    });
    blocks.push({ type: "p", children });
    paragraph = [];
  };
  const endList = () => {
    if (list) blocks.push(list);
    list = null;
  };
  for (const line of lines) {
    if (line.trim() === "") {
      endParagraph();
      endList();
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      endParagraph();
      endList();
      blocks.push({ type: `h${heading[1].length}`, children: parseInline(heading[2]) });
      continue;
    }
    const bullet = BULLET.exec(line);
    const numbered = bullet ? null : NUMBERED.exec(line);
    if (bullet || numbered) {
      endParagraph();
      const type = bullet ? "ul" : "ol";
      if (list && list.type !== type) endList();
      list ??= { type, children: [] };
      list.children.push({ type: "li", children: parseInline((bullet ?? numbered)[1].trim()) });
      continue;
    }
    if (list && /^\s+\S/.test(line)) {
      // An indented line continues the last list item.
      const item = list.children[list.children.length - 1];
      item.children.push({ type: "br" }, ...parseInline(line.trim()));
      continue;
    }
    endList();
    paragraph.push(line);
  }
  endParagraph();
  endList();
  return blocks;
}

const HTML_ESCAPES = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** `text` with `& < > " '` escaped for HTML text and attribute values. */
export function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch]);
}

/** HTML for nodes from `parse()`; every text and attribute is escaped. */
export function toHtml(nodes) {
  return nodes
    .map((node) => {
      switch (node.type) {
        case "text":
          return escapeHtml(node.text);
        case "code":
          return `<code>${escapeHtml(node.text)}</code>`;
        case "br":
          return "<br>";
        case "a":
          if (!isSafeUrl(node.href)) return toHtml(node.children);
          return `<a href="${escapeHtml(node.href)}" rel="noopener noreferrer" target="_blank">${toHtml(node.children)}</a>`;
        default:
          return `<${node.type}>${toHtml(node.children)}</${node.type}>`;
      }
    })
    .join("");
}

const ELEMENTS = new Set(["p", "h1", "h2", "h3", "ul", "ol", "li", "strong", "em"]);

/** A DocumentFragment for nodes from `parse()`, built without any HTML parsing. */
export function toDom(nodes, doc = globalThis.document) {
  const fragment = doc.createDocumentFragment();
  for (const node of nodes) {
    if (node.type === "text") {
      fragment.append(doc.createTextNode(node.text));
    } else if (node.type === "code") {
      const code = doc.createElement("code");
      code.textContent = node.text;
      fragment.append(code);
    } else if (node.type === "br") {
      fragment.append(doc.createElement("br"));
    } else if (node.type === "a") {
      if (isSafeUrl(node.href)) {
        const a = doc.createElement("a");
        a.href = node.href;
        a.rel = "noopener noreferrer";
        a.target = "_blank";
        a.append(toDom(node.children, doc));
        fragment.append(a);
      } else {
        fragment.append(toDom(node.children, doc));
      }
    } else if (ELEMENTS.has(node.type)) {
      const element = doc.createElement(node.type);
      element.append(toDom(node.children, doc));
      fragment.append(element);
    }
  }
  return fragment;
}

/** Replaces the content of `element` with `source` rendered. */
export function renderMarkdown(element, source) {
  element.replaceChildren(toDom(parse(source), element.ownerDocument));
}
