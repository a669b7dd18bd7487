// Directives end to end in headless Chromium: a moderator on /console ticks a city on the
// tree picker and sends an urgent directive; two officers' /inbox pages show the banner
// live; one acknowledges, and the console's acknowledgement map shows that unit
// acknowledged within seconds, with the counts moved; a meeting-room screen that was
// away during the send (logged in with `?credential=`) catches up when it comes back.
// Then the moderator corrects it (the officer sees what changed and acknowledges again)
// and retracts it (struck through everywhere).
//
// Environment as for browser.mjs, plus ROOTCAST_TEST_DIRECTIVES (set by
// tests/web_directives.rs): {moderator: {username, password}, city: {id, name, count},
// officers: [{username, password, unit}, {…}], screen: {unit, credential}}.

import { STEP_TIMEOUT_MS, check, runInBrowser, serverFromArgs, waitFor } from "./browser.mjs";

const { httpUrl } = serverFromArgs();
const setup = JSON.parse(process.env.ROOTCAST_TEST_DIRECTIVES ?? "null");
if (!setup?.moderator || setup.officers?.length !== 2 || !setup.screen) {
  console.error("FAIL: ROOTCAST_TEST_DIRECTIVES is not set (run through tests/web_directives.rs)");
  process.exit(1);
}
/** How soon a change must show on another page. */
const LIVE_MS = 5_000;

const sel = (testId) => `[data-testid="${testId}"]`;

await runInBrowser("directives", async ({ context, page: consolePage, problems }) => {
  const watch = (page, name) => {
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", (error) => problems.push(`${name}: page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") {
        problems.push(`${name}: console ${message.type()}: ${message.text()}`);
      }
    });
    page.on("dialog", (dialog) => {
      problems.push(`${name}: a dialog opened: ${dialog.message()}`);
      dialog.dismiss().catch(() => {});
    });
    return page;
  };
  consolePage.on("dialog", (dialog) => {
    problems.push(`console: a dialog opened: ${dialog.message()}`);
    dialog.dismiss().catch(() => {});
  });

  async function login(page, { username, password }) {
    await page.fill(sel("username"), username);
    await page.fill(sel("password"), password);
    await page.click(sel("login"));
    await waitFor(page, `${username} logged in and live`, () => {
      const badge = document.querySelector('[data-testid="state"]');
      return badge.dataset.state === "live";
    });
  }

  // ---- a meeting-room screen logs in with its credential, then goes away ----
  const screen = watch(await context.newPage(), "screen");
  await screen.goto(`${httpUrl}/inbox?credential=${encodeURIComponent(setup.screen.credential)}&lang=en`);
  await waitFor(screen, "the screen logged in with its credential", () => {
    return document.querySelector('[data-testid="state"]').dataset.state === "live";
  });
  const screenUrl = screen.url();
  check(!screenUrl.includes("credential"), `the credential left the address bar: ${screenUrl}`);
  check(screenUrl.includes("lang=en"), `other parameters stay: ${screenUrl}`);
  await screen.goto("about:blank");

  // ---- two officers' inboxes, live ----
  const inboxes = [];
  for (const [i, officer] of setup.officers.entries()) {
    const page = watch(await context.newPage(), `inbox ${i + 1}`);
    await page.goto(`${httpUrl}/inbox`);
    await login(page, officer);
    await waitFor(page, "the unit name", () => document.querySelector('[data-testid="unit-name"]').textContent !== "");
    check(await page.isHidden(sel("banner")), "no banner before anything is sent");
    inboxes.push({ page, officer });
  }

  // ---- the moderator composes and sends ----
  await consolePage.goto(`${httpUrl}/console`);
  await login(consolePage, setup.moderator);
  const city = setup.city;
  await consolePage.waitForSelector(sel(`pick-${city.id}`));
  await consolePage.check(sel(`pick-${city.id}`));
  await waitFor(
    consolePage,
    `the target count ${city.count}`,
    (count) => document.querySelector('[data-testid="target-count"]').dataset.value === String(count),
    city.count,
  );
  // A kind filter narrows the count; clearing it brings the city back.
  await consolePage.check(sel("kind-station"));
  const stations = Number(await consolePage.getAttribute(sel("target-count"), "data-value"));
  check(stations > 0 && stations < city.count, `stations only: ${stations} of ${city.count}`);
  await consolePage.uncheck(sel("kind-station"));
  // A county under the ticked city shows ticked and locked.
  await consolePage.click(sel(`expand-${city.id}`));
  const firstChild = await consolePage.evaluate((id) => {
    const item = document.querySelector(`li[data-unit="${id}"] > ul > li`);
    return item?.dataset.unit;
  }, city.id);
  check(firstChild, "the city has units below it in the tree");
  const childBox = await consolePage.evaluate((id) => {
    const box = document.querySelector(`[data-testid="pick-${id}"]`);
    return { checked: box.checked, disabled: box.disabled };
  }, firstChild);
  check(childBox.checked && childBox.disabled, `a unit under a ticked city is covered: ${JSON.stringify(childBox)}`);

  const title = `防汛值班安排 ${Date.now()}`;
  const body = "请各单位**今晚**落实值班。\n\n- 值班表\n- 联系人\n\n<img src=x onerror=alert(1)> [看这里](javascript:alert(1))";
  await consolePage.fill(sel("title"), title);
  await consolePage.fill(sel("body"), body);
  await consolePage.selectOption(sel("priority"), "urgent");
  const preview = await consolePage.evaluate(() => {
    const box = document.querySelector('[data-testid="preview"]');
    return { strong: box.querySelector("strong")?.textContent, img: box.querySelectorAll("img").length, a: box.querySelectorAll("a").length };
  });
  check(preview.strong === "今晚" && preview.img === 0 && preview.a === 0, `safe preview: ${JSON.stringify(preview)}`);
  await consolePage.click(sel("send"));
  await waitFor(consolePage, "the acknowledgement map", () => {
    const dashboard = document.querySelector('[data-testid="dashboard"]');
    return !dashboard.hidden && document.querySelectorAll('[data-testid="ack-map"] .ack-dot').length > 0;
  });
  const totals = await consolePage.evaluate(() => ({
    targeted: document.querySelector('[data-testid="total-targeted"]').dataset.value,
    acknowledged: document.querySelector('[data-testid="total-acknowledged"]').dataset.value,
    dots: document.querySelectorAll('[data-testid="ack-map"] .ack-dot').length,
    status: document.querySelector('[data-testid="status"]').textContent,
  }));
  check(totals.targeted === String(city.count), `targeted ${totals.targeted}, expected ${city.count}`);
  check(totals.dots === city.count, `one square per targeted unit: ${totals.dots}`);
  check(totals.acknowledged === "0", `nothing acknowledged yet: ${totals.acknowledged}`);
  const directiveId = await consolePage.evaluate(() => globalThis.rootcast.model.current.id);
  check(
    await consolePage.isVisible(sel(`directive-${directiveId}`)),
    "the sent directive is in the console's list",
  );

  // ---- the banners arrive live; receipts reach the map ----
  for (const { page, officer } of inboxes) {
    await waitFor(
      page,
      `${officer.username}: the banner`,
      (expected) => {
        const banner = document.querySelector('[data-testid="banner"]');
        return !banner.hidden && banner.dataset.priority === "urgent" && banner.textContent.includes(expected);
      },
      title,
    );
    await waitFor(page, "the entry in the list", (id) => document.querySelector(`[data-testid="entry-${id}"]`), directiveId);
  }
  for (const { officer } of inboxes) {
    await waitFor(
      consolePage,
      `the receipt of ${officer.unit} on the map`,
      (unit) => document.querySelector(`[data-testid="ack-map"] [data-unit="${unit}"]`)?.dataset.stage === "delivered",
      officer.unit,
    );
  }

  // ---- the first officer opens and acknowledges ----
  const [first, second] = inboxes;
  await first.page.click(sel("banner-open"));
  await waitFor(first.page, "the directive opened", () => !document.querySelector('[data-testid="detail"]').hidden);
  const detail = await first.page.evaluate(() => {
    const box = document.querySelector('[data-testid="detail-body"]');
    return {
      strong: box.querySelector("strong")?.textContent,
      items: box.querySelectorAll("li").length,
      img: box.querySelectorAll("img").length,
      links: box.querySelectorAll("a").length,
      text: box.textContent,
      banner: document.querySelector('[data-testid="banner"]').hidden,
    };
  });
  check(detail.strong === "今晚" && detail.items === 2, `the body is rendered: ${JSON.stringify(detail)}`);
  check(detail.img === 0 && detail.links === 0 && detail.text.includes("<img"), `hostile parts are text: ${JSON.stringify(detail)}`);
  check(detail.banner, "opening the directive clears the banner");
  await waitFor(
    consolePage,
    "the read mark on the map",
    (unit) => document.querySelector(`[data-testid="ack-map"] [data-unit="${unit}"]`)?.dataset.stage === "read",
    first.officer.unit,
  );
  await first.page.click(sel("ack"));
  await waitFor(first.page, "who acknowledged", () => {
    const line = document.querySelector('[data-testid="acked"]');
    return !line.hidden && document.querySelector('[data-testid="ack"]').hidden;
  });
  const ackedText = await first.page.textContent(sel("acked"));
  check(ackedText.includes(first.officer.username), `the acknowledgement names its officer: ${ackedText}`);
  const ackedAt = Date.now();

  await consolePage.waitForFunction(
    (unit) => document.querySelector(`[data-testid="ack-map"] [data-unit="${unit}"]`)?.dataset.stage === "acknowledged",
    first.officer.unit,
    { timeout: LIVE_MS, polling: 50 },
  );
  const live = Date.now() - ackedAt;
  const after = await consolePage.evaluate(
    ({ acked, waiting }) => ({
      acknowledged: document.querySelector('[data-testid="total-acknowledged"]').dataset.value,
      median: document.querySelector('[data-testid="median-ack"]').dataset.value,
      notAcked: [...document.querySelectorAll('[data-testid="not-acked"] li[data-unit]')].map((li) => li.dataset.unit),
      notAckedCount: document.querySelector('[data-testid="not-acked-count"]').dataset.value,
      secondStage: document.querySelector(`[data-testid="ack-map"] [data-unit="${waiting}"]`)?.dataset.stage,
      ackedListed: document.querySelector(`[data-testid="not-acked"] [data-unit="${acked}"]`) !== null,
    }),
    { acked: first.officer.unit, waiting: second.officer.unit },
  );
  check(after.acknowledged === "1", `one acknowledged: ${after.acknowledged}`);
  check(after.median !== "", "a median time to acknowledge");
  check(!after.ackedListed, "the acknowledged unit left the not-yet list");
  check(after.notAckedCount === String(city.count - 1), `${after.notAckedCount} still to acknowledge`);
  check(after.secondStage === "delivered", `the other unit is delivered, not more: ${after.secondStage}`);
  console.log(`the console showed the acknowledgement ${live} ms after it was made`);

  // The second officer's page got nothing for the first unit's acknowledgement.
  check(await second.page.isVisible(sel("banner")), "the second banner stays until opened");

  // ---- the screen comes back and catches up ----
  await screen.goto(`${httpUrl}/inbox?lang=en`);
  await waitFor(
    screen,
    "the screen caught up: banner and entry",
    ({ id, expected }) => {
      const banner = document.querySelector('[data-testid="banner"]');
      return !banner.hidden && banner.textContent.includes(expected) && document.querySelector(`[data-testid="entry-${id}"]`);
    },
    { id: directiveId, expected: title },
  );
  await waitFor(
    consolePage,
    "the screen's receipt on the map",
    (unit) => document.querySelector(`[data-testid="ack-map"] [data-unit="${unit}"]`)?.dataset.stage === "delivered",
    setup.screen.unit,
  );
  await screen.click(sel(`entry-${directiveId}`));
  await waitFor(screen, "the screen shows the directive without an Acknowledge button", () => {
    return (
      !document.querySelector('[data-testid="detail"]').hidden &&
      document.querySelector('[data-testid="ack"]').hidden &&
      !document.querySelector('[data-testid="ack-note"]').hidden
    );
  });

  // ---- the moderator corrects: a fresh acknowledgement is asked for ----
  await consolePage.click(sel("correct"));
  await consolePage.fill(sel("correct-title"), `${title}（更正）`);
  await consolePage.selectOption(sel("correct-priority"), "important");
  await consolePage.fill(sel("correct-note"), "时间有误");
  await consolePage.click(sel("correct-send"));
  await waitFor(consolePage, "the corrected map, back to zero acknowledged", () => {
    const figure = document.querySelector('[data-testid="total-acknowledged"]');
    return figure.dataset.value === "0" && globalThis.rootcast.model.current?.directive?.version === 2;
  });
  await waitFor(
    first.page,
    "the correction on the first officer's page",
    ({ id, expected }) => {
      const banner = document.querySelector('[data-testid="banner"]');
      const detail = document.querySelector('[data-testid="detail"]');
      const changes = document.querySelector('[data-testid="detail-changes"]');
      return (
        !banner.hidden &&
        banner.dataset.priority === "important" &&
        detail.dataset.directive === id &&
        document.querySelector('[data-testid="detail-title"]').textContent === expected &&
        !changes.hidden &&
        changes.textContent.includes("时间有误") &&
        !document.querySelector('[data-testid="ack"]').hidden
      );
    },
    { id: directiveId, expected: `${title}（更正）` },
  );
  await first.page.click(sel("ack"));
  await waitFor(
    consolePage,
    "the acknowledgement of the correction on the map",
    (unit) => document.querySelector(`[data-testid="ack-map"] [data-unit="${unit}"]`)?.dataset.stage === "acknowledged",
    first.officer.unit,
  );

  // ---- the second officer reports a problem with it ----
  const problem = `值班表缺少联系电话 ${Date.now()}`;
  await second.page.click(sel(`entry-${directiveId}`));
  await second.page.check(sel("feedback-problem"));
  await second.page.fill(sel("feedback-body"), problem);
  await second.page.click(sel("feedback-send"));
  await waitFor(second.page, "the report sent", () => {
    return document.querySelector('[data-testid="feedback-status"]').dataset.kind !== undefined;
  });
  const sent = await second.page.evaluate(() => document.querySelector('[data-testid="feedback-status"]').textContent);
  check(await second.page.getAttribute(sel("feedback-status"), "data-kind") === "ok", `the report was sent: ${sent}`);
  const moderatorLogin = await fetch(`${httpUrl}/api/v1/login`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(setup.moderator),
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  }).then((reply) => reply.json());
  const threads = await fetch(`${httpUrl}/api/v1/feedback`, {
    headers: { Authorization: `Bearer ${moderatorLogin.token}` },
    signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
  }).then((reply) => reply.text());
  check(threads.includes(problem) || threads.includes(directiveId), `the moderator sees the report: ${threads.slice(0, 300)}`);

  // ---- and retracts ----
  await consolePage.click(sel("retract"));
  await consolePage.fill(sel("retract-reason"), "已另行通知");
  await consolePage.click(sel("retract-send"));
  await waitFor(
    consolePage,
    "the retraction in the console",
    (id) =>
      document.querySelector(`[data-testid="directive-${id}"]`)?.hasAttribute("data-retracted") &&
      document.querySelector('[data-testid="dashboard"]').hasAttribute("data-retracted") &&
      document.querySelector('[data-testid="retract"]').disabled,
    directiveId,
  );
  for (const { page, officer } of inboxes) {
    await waitFor(
      page,
      `${officer.username}: the directive struck through`,
      (id) => document.querySelector(`[data-testid="entry-${id}"]`)?.hasAttribute("data-retracted"),
      directiveId,
    );
  }
  check(await first.page.isHidden(sel("ack")), "no Acknowledge button on a retracted directive");
  check(await first.page.isVisible(sel("detail-retracted")), "the open directive says it was retracted");

  // ---- the console in Chinese ----
  await consolePage.click(sel("language"));
  const chinese = await consolePage.evaluate(() => ({
    lang: document.documentElement.lang,
    send: document.querySelector('[data-testid="send"]').textContent,
    level: document.querySelector('[data-testid="by-level"] tbody th')?.textContent,
  }));
  check(chinese.lang === "zh-CN" && chinese.send === "发送", `Chinese text: ${JSON.stringify(chinese)}`);
  check(["市级", "县级", "基层单位"].includes(chinese.level), `level names in Chinese: ${chinese.level}`);
});
