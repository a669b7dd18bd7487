// Helpers shared by the centrifuge-js test programs: finding the SDKs, reading the test
// server's address from the environment, checks that fail loudly, and waits that time out.
//
// A program run by tests/sdk.rs gets:
//   ROOTCAST_WS_URL       ws://127.0.0.1:PORT/connection/websocket
//   ROOTCAST_API_URL      http://127.0.0.1:PORT/api
//   ROOTCAST_API_KEY      the server API key
//   ROOTCAST_TOKEN_<USER> connection tokens (JWT, HS256) made by the test for each user
//   ROOTCAST_TEST_NODE_MODULES  where tests/node_modules is (optional)
// It prints what it does, and exits 0 only when every check passed; on the first failed
// check (or an overall timeout) it prints "FAIL: <why>" and exits 1.

import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, inspect } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = process.env.ROOTCAST_TEST_NODE_MODULES || path.resolve(here, '../../node_modules');
const requireFromTests = createRequire(path.join(nodeModules, 'rootcast-tests.cjs'));

/** Loads an npm package from tests/node_modules (ROOTCAST_TEST_NODE_MODULES). */
export function sdk(name) {
    try {
        return requireFromTests(name);
    } catch (e) {
        fail(`can't load the npm package ${name} from ${nodeModules} (run scripts/test.sh, or npm ci in tests/): ${e.message}`);
    }
}

const started = Date.now();

export function log(...args) {
    const t = ((Date.now() - started) / 1000).toFixed(3).padStart(7);
    console.log(`[${t}s]`, ...args.map((a) => (typeof a === 'string' ? a : inspect(a, { depth: 6, breakLength: 160 }))));
}

export function fail(message) {
    console.error(`FAIL: ${message}`);
    process.exit(1);
}

// ROOTCAST_SDK_KEEP_GOING=1: a failed check is printed and the program goes on (and exits 1
// at the end, in done()), to see every difference in one run. Timeouts still stop it.
const keepGoing = process.env.ROOTCAST_SDK_KEEP_GOING === '1';
let failures = 0;

export function check(condition, message) {
    if (condition) return;
    if (keepGoing) {
        failures++;
        console.error(`FAIL (going on): ${message}`);
        return;
    }
    fail(message);
}

/** Ends the program: exit 0 if every check passed. */
export function done(name) {
    if (failures > 0) fail(`${name}: ${failures} failed checks (see above)`);
    log(`PASS: ${name}`);
    process.exit(0);
}

/** Fails unless `actual` deep-equals `expected`. */
export function eq(actual, expected, what) {
    if (!isDeepStrictEqual(actual, expected)) {
        check(false, `${what}: expected ${inspect(expected, { depth: 6 })}, got ${inspect(actual, { depth: 6 })}`);
    }
}

export function env(name) {
    const v = process.env[name];
    if (v === undefined || v === '') fail(`environment variable ${name} is not set (this program is run by tests/sdk.rs)`);
    return v;
}

/** Ends the program with a failure if it hasn't finished after `ms`. */
export function overallTimeout(ms, what) {
    setTimeout(() => fail(`${what}: did not finish within ${ms / 1000}s`), ms);
    process.on('unhandledRejection', (e) => fail(`unhandled rejection: ${e && e.stack ? e.stack : inspect(e)}`));
    process.on('uncaughtException', (e) => fail(`uncaught exception: ${e && e.stack ? e.stack : inspect(e)}`));
}

export function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Awaits `promise`, failing if it rejects or takes longer than `ms`. */
export async function within(ms, what, promise) {
    let timer;
    const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms`)), ms);
    });
    try {
        return await Promise.race([promise, timeout]);
    } catch (e) {
        fail(`${what}: ${e && e.message ? e.message : inspect(e)}${e && e.code !== undefined ? ` (code ${e.code})` : ''}`);
    } finally {
        clearTimeout(timer);
    }
}

/** Awaits `promise` and fails unless it rejects (within `ms`); returns the error. */
export async function rejects(ms, what, promise) {
    let timer;
    const timeout = new Promise((resolve) => {
        timer = setTimeout(() => resolve({ timedOut: true }), ms);
    });
    try {
        const r = await Promise.race([promise.then((value) => ({ value }), (error) => ({ error })), timeout]);
        if (r.timedOut) fail(`${what}: neither resolved nor rejected within ${ms}ms`);
        if (!('error' in r)) fail(`${what}: expected an error, got ${inspect(r.value, { depth: 6 })}`);
        return r.error;
    } finally {
        clearTimeout(timer);
    }
}

/**
 * Records events (kind, ctx) in arrival order; `next` waits for the first not yet taken
 * event matching a predicate.
 */
export class Recorder {
    constructor(name) {
        this.name = name;
        this.events = [];
        this.taken = {}; // kind -> index after the last event of that kind next() returned
        this.waiters = [];
    }

    /** Returns a listener that records events of `kind`. */
    on(kind) {
        return (ctx) => this.push(kind, ctx);
    }

    push(kind, ctx) {
        this.events.push({ kind, ctx });
        for (const w of [...this.waiters]) w();
    }

    /** Events of `kind` (all of them, taken or not). */
    all(kind) {
        return this.events.filter((e) => e.kind === kind).map((e) => e.ctx);
    }

    /**
     * Waits for the next event of `kind` matching `pred`, after the last event of that kind
     * that next() returned.
     */
    next(kind, ms, what, pred = () => true) {
        return within(ms, `${this.name}: waiting for ${what}`, new Promise((resolve) => {
            const look = () => {
                for (let i = this.taken[kind] || 0; i < this.events.length; i++) {
                    const e = this.events[i];
                    if (e.kind === kind && pred(e.ctx)) {
                        this.taken[kind] = i + 1;
                        this.waiters = this.waiters.filter((w) => w !== look);
                        resolve(e.ctx);
                        return true;
                    }
                }
                return false;
            };
            if (!look()) this.waiters.push(look);
        }));
    }
}

/** Polls `probe` (async) until it returns a truthy value, for at most `ms`. */
export async function eventually(ms, what, probe) {
    const deadline = Date.now() + ms;
    let last;
    for (;;) {
        last = await probe();
        if (last && last.ok) return last.value;
        if (Date.now() > deadline) fail(`${what}: still not true after ${ms}ms; last seen ${inspect(last && last.seen, { depth: 6 })}`);
        await sleep(50);
    }
}
