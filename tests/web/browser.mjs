// Shared plumbing for the browser tests in this folder: start headless Chromium with
// playwright-core, run one test body, report, clean up, and never run past a deadline.
//
// Environment (set by tests/web_page.rs):
//   ROOTCAST_TEST_API_KEY       server API key (required)
//   ROOTCAST_TEST_NODE_MODULES  folder holding playwright-core (default: tests/node_modules)
//   ROOTCAST_TEST_CHROMIUM      browser binary (default /usr/bin/chromium)
//   ROOTCAST_TEST_SCREENSHOTS   where to save screenshots (default: a new temp folder)

import { createRequire } from "node:module";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** Longest wait for any one condition. */
export const STEP_TIMEOUT_MS = 20_000;
/** Longest a whole script may run. */
const OVERALL_TIMEOUT_MS = 120_000;

const here = path.dirname(fileURLToPath(import.meta.url));

export function fail(message) {
  console.error(`FAIL: ${message}`);
  process.exit(1);
}

export function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

/** Polls `predicate` in `page` until it is true; throws naming `what` after the step timeout. */
export async function waitFor(page, what, predicate, arg) {
  try {
    await page.waitForFunction(predicate, arg, { timeout: STEP_TIMEOUT_MS, polling: 100 });
  } catch (error) {
    throw new Error(`timed out after ${STEP_TIMEOUT_MS} ms waiting for ${what}: ${error.message.split("\n")[0]}`);
  }
}

/** `{httpUrl, apiKey, api}` from the command line and environment; `api(method, body)` calls
 * `POST /api/<method>` and fails unless the reply is 200 without an error. */
export function serverFromArgs() {
  const httpUrl = (process.argv[2] ?? "").replace(/\/$/, "");
  const apiKey = process.env.ROOTCAST_TEST_API_KEY ?? "";
  if (!/^https?:\/\//.test(httpUrl)) fail(`usage: node ${path.basename(process.argv[1])} <http_url>`);
  if (!apiKey) fail("ROOTCAST_TEST_API_KEY is not set");
  async function api(method, body) {
    const reply = await fetch(`${httpUrl}/api/${method}`, {
      method: "POST",
      headers: { "X-API-Key": apiKey, "Content-Type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    const text = await reply.text();
    const json = text ? JSON.parse(text) : {};
    check(reply.status === 200 && !json.error, `${method} ${JSON.stringify(body)}: ${reply.status} ${text}`);
    return json.result;
  }
  return { httpUrl, apiKey, api };
}

/** Chromium flags every test uses. */
const BASE_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** For tests that publish and play media: a generated test picture and tone instead of a
 * camera, granted without a prompt, and playback without a click. */
export const MEDIA_ARGS = [
  "--use-fake-device-for-media-stream",
  "--use-fake-ui-for-media-stream",
  "--autoplay-policy=no-user-gesture-required",
];

/** For tests that watch video in several tabs at once: background tabs keep decoding at
 * full speed. */
export const BACKGROUND_TAB_ARGS = [
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];

/**
 * Starts headless Chromium (playwright-core from ROOTCAST_TEST_NODE_MODULES) with a fresh
 * profile, after arming a watchdog that fails the script named `name` once `overallMs`
 * have passed. `args` are added to {@link BASE_ARGS}. Returns `{context, shotDir, cleanUp,
 * watchdog}`: `cleanUp()` removes the profile, `clearTimeout(watchdog)` disarms it.
 */
export async function launchBrowser(name, overallMs, { args = [], viewport = { width: 1280, height: 800 } } = {}) {
  const watchdog = setTimeout(() => fail(`${name} took longer than ${overallMs} ms`), overallMs);
  const nodeModules = process.env.ROOTCAST_TEST_NODE_MODULES ?? path.join(here, "..", "node_modules");
  const chromiumPath = process.env.ROOTCAST_TEST_CHROMIUM ?? "/usr/bin/chromium";

  // playwright-core is CommonJS; resolve it from the given node_modules folder.
  let chromium;
  try {
    ({ chromium } = createRequire(path.join(nodeModules, "..", "resolve-from-here.js"))("playwright-core"));
  } catch (error) {
    fail(`cannot load playwright-core from ${nodeModules} (run \`npm ci\` in tests/): ${error.message}`);
  }

  const shotDir = process.env.ROOTCAST_TEST_SCREENSHOTS ?? fs.mkdtempSync(path.join(os.tmpdir(), "rootcast-web-"));
  fs.mkdirSync(shotDir, { recursive: true });
  const profileDir = fs.mkdtempSync(path.join(os.tmpdir(), "rootcast-chromium-profile-"));
  const cleanUp = () => fs.rmSync(profileDir, { recursive: true, force: true });

  try {
    const context = await chromium.launchPersistentContext(profileDir, {
      executablePath: chromiumPath,
      headless: true,
      timeout: STEP_TIMEOUT_MS,
      viewport,
      locale: "en-US",
      args: [...BASE_ARGS, ...args],
    });
    return { context, shotDir, cleanUp, watchdog };
  } catch (error) {
    cleanUp();
    fail(`cannot start Chromium at ${chromiumPath}: ${error.message}`);
  }
}

/**
 * The REST API at `httpUrl` with a bearer token: `call(method, route, token, body)` →
 * `{status, body}` (body parsed as JSON when it is JSON), and `rest(…)`, which fails the
 * test unless the status is 2xx and returns the body.
 */
export function restClient(httpUrl) {
  async function call(method, route, token, body) {
    const response = await fetch(`${httpUrl}${route}`, {
      method,
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(STEP_TIMEOUT_MS),
    });
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      json = text;
    }
    return { status: response.status, body: json };
  }
  async function rest(method, route, token, body) {
    const reply = await call(method, route, token, body);
    check(reply.status >= 200 && reply.status < 300, `${method} ${route}: ${reply.status} ${JSON.stringify(reply.body)}`);
    return reply.body;
  }
  return { call, rest };
}

/**
 * Starts Chromium with a fresh profile, runs `body({context, page, shotDir, problems})`,
 * and exits: 0 when the body returns and the page logged no errors, 1 otherwise (with a
 * screenshot and the page's text). `name` is used in messages and file names.
 */
export async function runInBrowser(name, body) {
  const { context, shotDir, cleanUp, watchdog } = await launchBrowser(name, OVERALL_TIMEOUT_MS);

  const problems = [];
  let page;
  try {
    page = context.pages()[0] ?? (await context.newPage());
    page.setDefaultTimeout(STEP_TIMEOUT_MS);
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error" || message.type() === "warning") {
        problems.push(`console ${message.type()}: ${message.text()}`);
      }
    });
    await body({ context, page, shotDir, problems });
    if (problems.length > 0) throw new Error(`the page reported problems:\n  ${problems.join("\n  ")}`);
  } catch (error) {
    if (page) {
      const shot = path.join(shotDir, `${name}-failure.png`);
      await page.screenshot({ path: shot }).then(
        () => console.error(`screenshot of the failure: ${shot}`),
        () => {},
      );
      const text = await page.evaluate(() => document.body?.innerText).catch(() => "(page not readable)");
      console.error(`page text at failure:\n${text}`);
    }
    await context.close().catch(() => {});
    cleanUp();
    fail(`${name}: ${error.stack ?? error}`);
  }
  await context.close();
  cleanUp();
  clearTimeout(watchdog);
  console.log(`PASS: ${name}`);
}
