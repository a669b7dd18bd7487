// The directive pages' shared modules in headless Chromium, with a real DOM: hostile
// Markdown rendered by markdown.js builds no element it should not and runs no script;
// /console and /inbox load (logged out) without errors in either language.
//
// Environment as for browser.mjs.

import { check, runInBrowser, serverFromArgs, waitFor } from "./browser.mjs";

const { httpUrl } = serverFromArgs();

await runInBrowser("directive_modules", async ({ page, problems }) => {
  page.on("dialog", (dialog) => {
    problems.push(`a dialog opened: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });

  for (const path of ["/console", "/inbox"]) {
    await page.goto(`${httpUrl}${path}`);
    await waitFor(page, `${path}: the login form`, () => {
      const form = document.querySelector('[data-testid="login-section"]');
      return form && !form.hidden && document.title.includes("rootcast");
    });
    const hiddenApp = await page.evaluate(() =>
      [...document.querySelectorAll("[data-logged-in]")].every((element) => element.hidden),
    );
    check(hiddenApp, `${path}: nothing but the login form shows before a login`);
    // The language switch changes the page's text.
    const before = await page.evaluate(() => document.documentElement.lang);
    await page.click('[data-testid="language"]');
    const after = await page.evaluate(() => ({
      lang: document.documentElement.lang,
      login: document.querySelector('[data-testid="login"]').textContent,
    }));
    check(before === "en" && after.lang === "zh-CN", `${path}: language ${before} → ${after.lang}`);
    check(after.login === "登录", `${path}: the login button reads ${after.login}`);
    await page.click('[data-testid="language"]');
  }

  // Markdown with a DOM: nothing executable gets through.
  const result = await page.evaluate(async () => {
    const { renderMarkdown } = await import("/static/markdown.js");
    globalThis.__pwned = 0;
    const hostile = [
      "<img src=x onerror=\"globalThis.__pwned++\">",
      "<script>globalThis.__pwned++</script>",
      "[click](javascript:globalThis.__pwned++)",
      "[data](data:text/html,<script>parent.__pwned++</script>)",
      '[quote](https://ok.example/" onclick="globalThis.__pwned++)',
      "**<svg onload=globalThis.__pwned++>**",
      "- <iframe src=javascript:globalThis.__pwned++>",
      "[fine](https://example.org/通知?a=1&b=2)",
    ].join("\n\n");
    const box = document.createElement("div");
    document.body.append(box);
    renderMarkdown(box, hostile);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const tags = [...box.querySelectorAll("*")].map((element) => element.localName);
    const links = [...box.querySelectorAll("a")].map((a) => a.getAttribute("href"));
    const attributes = [...box.querySelectorAll("*")].flatMap((element) => element.getAttributeNames());
    const text = box.textContent;
    box.remove();
    return { pwned: globalThis.__pwned, tags, links, attributes, text };
  });
  check(result.pwned === 0, `hostile Markdown ran script ${result.pwned} time(s)`);
  const allowed = new Set(["p", "ul", "li", "strong", "a"]);
  check(result.tags.every((tag) => allowed.has(tag)), `only safe elements were built: ${result.tags}`);
  check(
    result.links.length === 1 && result.links[0] === "https://example.org/通知?a=1&b=2",
    `only the http(s) link is a link: ${JSON.stringify(result.links)}`,
  );
  check(
    result.attributes.every((name) => ["href", "rel", "target"].includes(name)),
    `no other attributes: ${result.attributes}`,
  );
  check(result.text.includes("<img src=x onerror="), "the hostile HTML shows as text");
  check(result.text.includes("click") && result.text.includes("quote"), "dropped links keep their text");
});
