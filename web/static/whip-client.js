// whip-client.js — WHIP (RFC 9725) and WHEP signalling shared by the publish and watch pages.
//
// Non-trickle: the offer is sent once ICE gathering is complete, so it lists every
// candidate, and the relay's answer lists all of its own (the relay answers PATCH with 405).
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
 * the offer to `endpoint` and applies the answer. Returns `{resourceUrl, stop()}`;
 * `stop()` DELETEs the session (best effort) and closes `pc`. Throws a `WhipError`.
 */
export async function startSession(pc, endpoint, token) {
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIceGathering(pc);
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
  await pc.setRemoteDescription({ type: "answer", sdp: text });

  let stopped = false;
  return {
    resourceUrl,
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

/** Delay before retry number `attempt` (0-based): 1 s, 2 s, 4 s, 8 s, then 15 s. */
export function backoffMs(attempt) {
  return Math.min(15_000, 1_000 * 2 ** Math.max(0, attempt));
}
