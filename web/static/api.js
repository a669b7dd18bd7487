// api.js — the REST API under `/api/v1/` for rootcast's pages: a login kept in
// `sessionStorage` (one per tab and page), `fetch` with the bearer token, and errors as
// `ApiError` carrying the hub's `{"error":{"code","message","retry_after"}}`.
//
//   import { Session, ApiError } from "./api.js";
//   const session = new Session("console");
//   await session.login("alice", "secret");           // or session.loginCredential(…)
//   const units = await session.get("/api/v1/org/units");
//   await session.post("/api/v1/directives", {...});

/** A failed call: HTTP `status` (0 when the network failed), the hub's stable `code`
 * (`forbidden`, `too_many_requests`, …; "" when the reply had no JSON error) and its
 * message (English, for people: pages decide on `status`, `code` and `retryAfter`, never
 * on the message's words). `retryAfter` is the seconds to wait before trying again (the
 * body's `retry_after`, else the `Retry-After` header), or null. `unsupported` is true
 * when the route does not exist on this hub (404/405 without the hub's JSON error body),
 * so a page can say a feature is not available yet. */
export class ApiError extends Error {
  constructor(status, code, message, { retryAfter = null } = {}) {
    super(message || code || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
    this.unsupported = (status === 404 || status === 405) && !code;
  }
}

/** Whole seconds from a `retry_after` value or a `Retry-After` header (seconds only; an
 * HTTP date is not used by the hub), or null. */
function seconds(value) {
  if (value === null || value === undefined || value === "") return null;
  const number = Number(value);
  return Number.isFinite(number) && number >= 0 ? Math.ceil(number) : null;
}

/** Longest wait for one REST call. */
const TIMEOUT_MS = 15_000;

/** Calls `method path` with an optional bearer `token` and JSON `body`; resolves with the
 * parsed JSON reply (null for an empty one) or rejects with `ApiError`. */
export async function request(method, path, { token, body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (error) {
    throw new ApiError(0, "network", error?.message ?? String(error));
  }
  const text = await response.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!response.ok) {
    const error = json?.error;
    const retryAfter = seconds(error?.retry_after) ?? seconds(response.headers.get("Retry-After"));
    throw new ApiError(response.status, error?.code ?? "", error?.message ?? text.slice(0, 200), { retryAfter });
  }
  return json;
}

/**
 * One person's login on one page: `{token, expires_at, account}` kept in sessionStorage
 * under `rootcast.session.<name>`, dropped when it expires or the hub says 401.
 */
export class Session extends EventTarget {
  #key;
  #data = null;

  constructor(name) {
    super();
    this.#key = `rootcast.session.${name}`;
    try {
      const saved = JSON.parse(globalThis.sessionStorage?.getItem(this.#key) ?? "null");
      if (saved?.token && (!saved.expires_at || saved.expires_at > Date.now())) this.#data = saved;
    } catch {
      this.#data = null;
    }
  }

  /** The login reply, or null when logged out. */
  get data() {
    return this.#data;
  }

  get token() {
    return this.#data?.token ?? "";
  }

  get account() {
    return this.#data?.account ?? null;
  }

  async login(username, password) {
    return this.#keep(await request("POST", "/api/v1/login", { body: { username, password } }));
  }

  async loginCredential(credential) {
    return this.#keep(await request("POST", "/api/v1/login/credential", { body: { credential } }));
  }

  /** Forgets the login; listeners of "logout" hear about it. */
  logout(reason = "") {
    this.#data = null;
    try {
      globalThis.sessionStorage?.removeItem(this.#key);
    } catch {
      // Storage disabled: the login was only in memory.
    }
    this.dispatchEvent(new CustomEvent("logout", { detail: { reason } }));
  }

  get(path) {
    return this.#call("GET", path);
  }

  post(path, body = {}) {
    return this.#call("POST", path, body);
  }

  async #call(method, path, body) {
    try {
      return await request(method, path, { token: this.token, body });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) this.logout(error.message);
      throw error;
    }
  }

  #keep(reply) {
    if (!reply?.token) throw new ApiError(500, "internal", "the login reply has no token");
    this.#data = reply;
    try {
      globalThis.sessionStorage?.setItem(this.#key, JSON.stringify(reply));
    } catch {
      // Kept in memory only.
    }
    return reply;
  }
}
