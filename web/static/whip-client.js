// whip-client.js — WHIP (RFC 9725) and WHEP signalling shared by the publish and watch pages.
//
// Non-trickle: the offer is sent once ICE gathering is complete, so it lists every
// candidate, and the relay's answer lists all of its own. WHEP sessions may also get a
// layer selection URL (`Link: <…/layer>; rel="urn:ietf:params:whep:ext:core:layer"`):
// `selectLayer` and `layerState` use it.
//
//   const pc = new RTCPeerConnection();
//   pc.addTransceiver("video", { direction: "recvonly" });
//   const session = await startSession(pc, whepUrl("demo"), "token");
//   ...
//   await session.stop();   // DELETE of the Location, then pc.close()

/** How long to wait for ICE gathering before sending what has been gathered. */
export const GATHER_TIMEOUT_MS = 5_000;
/** How long an HTTP request may take. */
export const REQUEST_TIMEOUT_MS = 10_000;

/** A refused offer: `status` is the HTTP status (0 when the request itself failed). */
export class WhipError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "WhipError";
    this.status = status;
  }
}

/** `/whip/<stream>` on this origin. */
export function whipUrl(stream) {
  return new URL(`/whip/${encodeURIComponent(stream)}`, globalThis.location.href).href;
}

/** `/whep/<stream>` on this origin. */
export function whepUrl(stream) {
  return new URL(`/whep/${encodeURIComponent(stream)}`, globalThis.location.href).href;
}

/** The relay's rule for stream names: 1–64 of A-Z a-z 0-9 - _ . */
export function isValidStreamName(name) {
  return typeof name === "string" && /^[A-Za-z0-9._-]{1,64}$/.test(name);
}

/** The `rel` of the WHEP draft's video layer selection extension. */
export const LAYER_REL = "urn:ietf:params:whep:ext:core:layer";

/**
 * The links of a `Link` header value (several headers arrive joined by commas) as
 * `[{url, rel}]`, URLs resolved against `base`.
 */
export function parseLinks(value, base) {
  const links = [];
  for (const match of String(value ?? "").matchAll(/<([^>]*)>([^,<]*)/g)) {
    const rel = /;\s*rel="?([^";]+)"?/i.exec(match[2])?.[1];
    try {
      links.push({ url: new URL(match[1], base).href, rel });
    } catch {
      // Not a URL: skipped.
    }
  }
  return links;
}

/** Resolves when `pc` has gathered every candidate, or after `timeoutMs` (whatever is there). */
export function waitForIceGathering(pc, timeoutMs = GATHER_TIMEOUT_MS) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", onChange);
      resolve();
    };
    const onChange = () => {
      if (pc.iceGatheringState === "complete") done();
    };
    const timer = setTimeout(done, timeoutMs);
    pc.addEventListener("icegatheringstatechange", onChange);
  });
}

/**
 * Creates the offer on `pc` (transceivers already added), waits for ICE gathering, POSTs
 * the offer to `endpoint` and applies the answer. Returns `{resourceUrl, layerUrl, stop()}`
 * (`layerUrl`: the WHEP layer selection URL when the relay offers one); `stop()` DELETEs the
 * session (best effort) and closes `pc`. Throws a `WhipError`. `timing`, when given, gets
 * `postAt` (`performance.now()` as the POST goes out) and `answeredAt`.
 */
export async function startSession(pc, endpoint, token, timing = {}) {
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIceGathering(pc);
  timing.postAt = performance.now();
  let response;
  try {
    response = await fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` },
      body: pc.localDescription.sdp,
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new WhipError(0, error.message);
  }
  const text = await response.text();
  if (response.status !== 201) throw new WhipError(response.status, text.trim() || response.statusText);
  const location = response.headers.get("Location");
  const resourceUrl = location ? new URL(location, endpoint).href : null;
  const layerUrl = parseLinks(response.headers.get("Link"), endpoint).find((l) => l.rel === LAYER_REL)?.url ?? null;
  timing.answeredAt = performance.now();
  await pc.setRemoteDescription({ type: "answer", sdp: text });

  let stopped = false;
  return {
    resourceUrl,
    layerUrl,
    async stop() {
      if (stopped) return;
      stopped = true;
      // DELETE before closing: a closed peer connection tells the relay by itself
      // (DTLS close), and the relay may then have ended the session before the DELETE.
      if (resourceUrl) {
        try {
          await fetch(resourceUrl, {
            method: "DELETE",
            headers: { Authorization: `Bearer ${token}` },
            // Still sent when the page is being closed.
            keepalive: true,
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
        } catch {
          // The relay ends the session by itself once ICE stays disconnected.
        }
      }
      pc.close();
    },
  };
}

/**
 * Asks the relay for a layer (`auto`, `low`, `medium`, `high`, `audio`) on the WHEP layer URL.
 * Resolves to the relay's layer state; throws a `WhipError` when refused.
 */
export async function selectLayer(layerUrl, layer, token) {
  let response;
  try {
    response = await fetch(layerUrl, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ layer }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (error) {
    throw new WhipError(0, error.message);
  }
  const text = await response.text();
  if (!response.ok) throw new WhipError(response.status, text.trim() || response.statusText);
  return JSON.parse(text);
}

/** The relay's layer state for a WHEP session (GET on the layer URL). */
export async function layerState(layerUrl, token) {
  const response = await fetch(layerUrl, {
    headers: { Authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (!response.ok) throw new WhipError(response.status, (await response.text()).trim());
  return response.json();
}

/** Delay before retry number `attempt` (0-based): 1 s, 2 s, 4 s, 8 s, then 15 s. */
export function backoffMs(attempt) {
  return Math.min(15_000, 1_000 * 2 ** Math.max(0, attempt));
}
