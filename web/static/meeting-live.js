// meeting-live.js — what the viewer page (`/meeting`) and the meeting-room TV (`/tv`) share:
// one meeting's live state kept in step with the hub, and its video played with WHEP.
//
// `MeetingRoom` joins (`POST /api/v1/meetings/{id}/join`: the meeting, its state now, the
// channel tokens and, while live, the WHEP path and a view token), connects to the hub with
// the login token and subscribes to `meeting:<id>`, `qa:<id>` and `qa:<id>#<account>` (and,
// with `chat: true`, `meeting-chat:<id>` after `GET …/chat`). The store is the truth: after
// every (re)subscription the room reloads the whole state (join, `GET …/questions`, chat
// history) and pushes only move it on between reloads. A question or chat message removed by
// a push is remembered, so a reload that raced with the removal does not bring it back.
// Listeners hear one `change` event (detail: `{what}`) per change.
//
// `MeetingPlayer` plays the meeting's stream in a `<video>`: WHEP with retries after a
// growing delay (at most 5 s; every 1 s while the relay answers 404, i.e. the publisher is
// not back yet); a new session when the peer connection fails, stays disconnected for 3 s,
// decodes no frame (audio only: receives no packet) for 4 s (the relay or the publisher
// restarted, the network went; 10 s while video packets still arrive and only the decoder
// is behind), or when an attempt is stuck: no answer to its offer 4 s
// after it was sent (a request lost in a network outage is not waited for), not connected
// 6 s after the answer or 15 s after it began. A lost session is closed at once, without a
// DELETE that could hang on a dead network and hold one of the browser's few connections
// to the hub; closing tells the relay when it can still be told. When a session plays again
// after one was lost, `onRecovered` is called (the TV reloads the meeting's state then: the
// hub's pushes may still be stuck behind the outage). And the audio layer
// (`POST <session>/layer {"layer":"audio"}`) while the link is weak (over 8% of packets
// lost in a 5 s window, or under 1 frame decoded per second with packets still arriving,
// unless the video's packets arrive whole and only the decoder is behind); it asks for
// `auto` again after 30 s of a good link, and a new session after a lost one starts with
// video.

import { RootcastClient, State, websocketUrl } from "./rootcast-client.js";
import { ApiError, request } from "./api.js";
import { WhipError, backoffMs, selectLayer, startSession } from "./whip-client.js";

/** Delay before reloading after a (re)subscription, so several channels coming back at
 * once cost one reload. */
const RELOAD_DELAY_MS = 100;

/**
 * One meeting as the caller sees it. Fields (read them in `change` listeners):
 * `meeting`, `access`, `status`, `announcement` (the latest), `screen` (the question on
 * screen or null), `questions` (Map id → question with `answers`), `myVotes` (Set),
 * `media` (`{whep, token}` or null), `chat` (Map id → message), `chatSettings`, `chatYou`,
 * `phase` (connecting | live | reconnecting | disconnected), `error` (last load error),
 * `connects` and `reloads` (how many times the hub connection and the state came back).
 */
export class MeetingRoom extends EventTarget {
  #session;
  #client = null;
  #reloadTimer = null;
  #reloading = null;
  #reloadAgain = false;
  #removedQuestions = new Set();
  #removedMessages = new Set();
  #everLive = false;

  constructor(session, meetingId, { chat = false, name = "rootcast-meeting", maxReconnectDelay = 10_000 } = {}) {
    super();
    this.#session = session;
    this.id = meetingId;
    this.withChat = chat;
    this.clientName = name;
    this.maxReconnectDelay = maxReconnectDelay;
    this.meeting = null;
    this.access = null;
    this.status = "";
    this.announcement = null;
    this.screen = null;
    this.questions = new Map();
    this.myVotes = new Set();
    this.media = null;
    this.chat = new Map();
    this.chatSettings = null;
    this.chatYou = null;
    this.phase = "connecting";
    this.error = null;
    this.reloads = 0;
    this.connects = 0;
  }

  get client() {
    return this.#client;
  }

  #changed(what) {
    this.dispatchEvent(new CustomEvent("change", { detail: { what } }));
  }

  #path(suffix = "") {
    return `/api/v1/meetings/${encodeURIComponent(this.id)}${suffix}`;
  }

  /** Joins, subscribes and keeps the state in step until `stop()`. Rejects when the first
   * join is refused (unknown meeting, not in the audience). */
  async start() {
    const joined = await this.#session.post(this.#path("/join"));
    this.#takeJoin(joined);
    let chat = null;
    if (this.withChat) chat = await this.#session.get(this.#path("/chat"));
    const client = new RootcastClient(websocketUrl(), {
      token: this.#session.token,
      name: this.clientName,
      maxReconnectDelay: this.maxReconnectDelay,
    });
    this.#client = client;
    client.addEventListener("state", ({ detail }) => {
      if (detail.state === State.CONNECTING) this.#setPhase(this.#everLive ? "reconnecting" : "connecting");
    });
    client.addEventListener("connected", () => {
      this.connects += 1;
      this.#everLive = true;
      this.#setPhase("live");
    });
    client.addEventListener("disconnected", ({ detail }) => {
      if (detail.code !== 0) this.#setPhase("disconnected");
    });
    const subscribe = (channel, token, onData) => {
      const subscription = client.subscribe(channel, { token });
      subscription.addEventListener("publication", ({ detail }) => onData(detail.data));
      subscription.addEventListener("subscribed", () => this.#scheduleReload());
    };
    const channels = joined.channels ?? {};
    subscribe(channels.meeting.channel, channels.meeting.token, (data) => this.#onMeetingPush(data));
    subscribe(channels.qa.channel, channels.qa.token, (data) => this.#onQaPush(data));
    subscribe(channels.qa_personal.channel, channels.qa_personal.token, (data) => this.#onQaPush(data));
    if (chat) {
      this.#takeChat(chat);
      subscribe(chat.channel, chat.token, (data) => this.#onChatPush(data));
    }
    client.connect();
  }

  stop() {
    clearTimeout(this.#reloadTimer);
    this.#client?.disconnect();
    this.#client = null;
  }

  #setPhase(phase) {
    this.phase = phase;
    this.#changed("phase");
  }

  #scheduleReload() {
    clearTimeout(this.#reloadTimer);
    this.#reloadTimer = setTimeout(() => this.reload(), RELOAD_DELAY_MS);
  }

  /** Fetches the whole state again (one reload at a time; a request made meanwhile runs
   * once more afterwards). */
  reload() {
    if (this.#reloading) {
      this.#reloadAgain = true;
      return this.#reloading;
    }
    this.#reloading = (async () => {
      try {
        do {
          this.#reloadAgain = false;
          const [joined, list, chat] = await Promise.all([
            this.#session.post(this.#path("/join")),
            this.#session.get(this.#path("/questions?sort=time")),
            this.withChat ? this.#session.get(this.#path("/chat")) : null,
          ]);
          this.#takeJoin(joined);
          this.#takeQuestions(list);
          if (chat) this.#takeChat(chat);
          this.error = null;
          this.reloads += 1;
          this.#changed("all");
        } while (this.#reloadAgain);
      } catch (error) {
        this.error = error;
        this.#changed("error");
        // Try again shortly unless the login ended (the page handles that).
        if (!(error instanceof ApiError && error.status === 401)) {
          clearTimeout(this.#reloadTimer);
          this.#reloadTimer = setTimeout(() => this.reload(), 2_000);
        }
      } finally {
        this.#reloading = null;
      }
    })();
    return this.#reloading;
  }

  #takeJoin(joined) {
    this.meeting = joined.meeting ?? this.meeting;
    this.access = joined.access ?? this.access;
    this.status = joined.state?.status ?? joined.meeting?.status ?? this.status;
    const announcement = joined.state?.announcement ?? null;
    if (announcement && (this.announcement?.number ?? 0) <= announcement.number) this.announcement = announcement;
    this.screen = joined.state?.screen ?? null;
    this.media = joined.media ?? null;
  }

  #takeQuestions(list) {
    const next = new Map();
    for (const question of list?.questions ?? []) {
      if (this.#removedQuestions.has(question.id)) continue;
      const known = this.questions.get(question.id);
      // A push newer than what the reload read wins.
      next.set(question.id, known && (known.updated_at ?? 0) > (question.updated_at ?? 0) ? { ...question, ...known } : question);
    }
    this.questions = next;
    this.myVotes = new Set(list?.my_votes ?? []);
  }

  #takeChat(chat) {
    const next = new Map();
    for (const message of chat.messages ?? []) {
      if (!this.#removedMessages.has(message.id)) next.set(message.id, message);
    }
    // Messages pushed after the history was read stay.
    for (const [id, message] of this.chat) if (!next.has(id) && id > Math.max(0, ...next.keys())) next.set(id, message);
    this.chat = next;
    this.chatSettings = chat.settings ?? this.chatSettings;
    this.chatYou = chat.you ?? this.chatYou;
  }

  #onMeetingPush(data) {
    if (data?.type === "announcement" && data.announcement) {
      if ((this.announcement?.number ?? 0) < data.announcement.number) this.announcement = data.announcement;
      this.#changed("announcement");
    } else if (data?.type === "screen") {
      this.screen = data.question ?? null;
      this.#changed("screen");
    } else if (data?.type === "state" && data.meeting) {
      this.meeting = data.meeting;
      this.status = data.meeting.status;
      this.#changed("status");
      // Going live (or a new stream) needs the view token only join hands out.
      this.reload();
    }
  }

  #onQaPush(data) {
    if (data?.type === "question" && data.question) {
      const question = data.question;
      if (this.#removedQuestions.has(question.id)) return;
      const known = this.questions.get(question.id);
      if (question.status === "rejected" || question.status === "merged") {
        this.questions.delete(question.id);
      } else {
        this.questions.set(question.id, { ...question, answers: question.answers ?? known?.answers ?? [] });
      }
      if (this.screen?.id === question.id) this.screen = { ...this.screen, ...question };
      this.#changed("questions");
    } else if (data?.type === "question_removed") {
      this.#removedQuestions.add(data.id);
      this.questions.delete(data.id);
      if (this.screen?.id === data.id) this.screen = null;
      this.#changed("questions");
    } else if (data?.type === "answer" && data.answer) {
      const question = this.questions.get(data.answer.question);
      if (question) {
        const answers = (question.answers ?? []).filter((a) => a.number !== data.answer.number);
        answers.push(data.answer);
        answers.sort((a, b) => a.number - b.number);
        question.answers = answers;
      }
      this.#changed("questions");
    }
  }

  #onChatPush(data) {
    if (data?.type === "message" && data.message) {
      if (!this.#removedMessages.has(data.message.id)) this.chat.set(data.message.id, data.message);
      this.#changed("chat");
    } else if (data?.type === "deleted") {
      this.#removedMessages.add(data.id);
      this.chat.delete(data.id);
      this.#changed("chat");
    } else if (data?.type === "settings" && data.settings) {
      this.chatSettings = data.settings;
      this.#changed("chat");
    }
  }

  // ---- the caller's actions (REST; the change comes back as a push) ----

  ask(body, anonymous) {
    return this.#session.post(this.#path("/questions"), { body, anonymous });
  }

  async vote(questionId, on) {
    const path = `/api/v1/questions/${encodeURIComponent(questionId)}/vote`;
    const reply = on ? await this.#session.post(path) : await request("DELETE", path, { token: this.#session.token });
    if (on) this.myVotes.add(questionId);
    else this.myVotes.delete(questionId);
    if (reply?.question) this.#onQaPush({ type: "question", question: reply.question });
    else this.#changed("questions");
    return reply;
  }

  postChat(text) {
    return this.#session.post(this.#path("/chat/messages"), { text });
  }
}

/** The questions in display order: `votes` (most first, ties earliest) or `time` (newest first). */
export function sortQuestions(questions, sort) {
  const list = [...questions];
  if (sort === "votes") list.sort((a, b) => b.votes - a.votes || a.asked_at - b.asked_at || (a.id < b.id ? -1 : 1));
  else list.sort((a, b) => b.asked_at - a.asked_at || (a.id < b.id ? 1 : -1));
  return list;
}

/** Loss share above which a 5 s window counts as a weak link. */
const WEAK_LOSS = 0.08;
/** Video packets per second (with loss under `DECODER_BEHIND_LOSS`) that mean the link
 * carries the video even when few frames are decoded. */
const DECODER_BEHIND_VIDEO_RATE = 10;
const DECODER_BEHIND_LOSS = 0.02;
/** How long the link must stay good before video is asked for again. */
const RECOVER_AFTER_MS = 30_000;
/** No frame decoded for this long while live: the session is restarted. */
const STALL_MS = 4_000;
/** The same while the video's packets still arrive (the decoder is behind). */
const DECODER_STALL_MS = 10_000;
/** Longest wait between two WHEP attempts. */
const MAX_RETRY_MS = 5_000;
/** A connected session that stays disconnected this long is restarted. */
const DISCONNECTED_MS = 3_000;
/** A session that has not connected this long after it began is restarted. */
const CONNECT_TIMEOUT_MS = 15_000;
/** An offer with no answer this long after it was sent is given up (its request may have
 * been sent into a network outage and wait for TCP's retransmissions). */
const ANSWER_TIMEOUT_MS = 4_000;
/** A session that has not connected this long after the relay answered is restarted. */
const ICE_TIMEOUT_MS = 6_000;
/** Wait between attempts while the relay answers 404 (the stream has no publisher yet). */
const WAITING_RETRY_MS = 1_000;

/**
 * Plays `media` (`{whep, token}`) in `video`. `onChange()` is called when `phase`
 * (idle | connecting | live | reconnecting), `audioOnly` or `notice` change; `onRecovered()`
 * when a session connects after the one before it was lost. `sessions` counts the WHEP
 * sessions that connected, `framesDecoded` the current one's frames, `checkedAt` when the
 * once-a-second check last ran (`performance.now()`), `lost` the sessions given up and
 * `lastLoss` why the last one was (for tests and the console).
 */
export class MeetingPlayer {
  #video;
  #onChange;
  #onRecovered;
  #media = null;
  #current = null;
  #retryTimer = null;
  #attempt = 0;
  #monitor = null;
  #hadLoss = false;

  constructor(video, onChange = () => {}, { onRecovered = () => {} } = {}) {
    this.#video = video;
    this.#onChange = onChange;
    this.#onRecovered = onRecovered;
    this.lost = 0;
    this.lastLoss = null;
    this.phase = "idle";
    this.audioOnly = false;
    this.weak = false;
    this.forcedAudio = false;
    this.notice = null;
    this.sessions = 0;
    this.framesDecoded = 0;
    this.checkedAt = null;
    this.#monitor = setInterval(() => this.#check().catch(() => {}), 1_000);
  }

  /** The peer connection now (for tests and the console). */
  get pc() {
    return this.#current?.pc ?? null;
  }

  /** The relay's layer selection URL of the current session (WHEP layer extension), or null. */
  get layerUrl() {
    return this.#current?.layerUrl ?? null;
  }

  /** Starts playing `media`, or stops when it is null. The same stream keeps its session. */
  setMedia(media) {
    const same = media && this.#media && media.whep === this.#media.whep;
    this.#media = media ?? null;
    if (same) {
      // A new token for the same stream: used from the next session on.
      if (this.phase === "idle") this.#connect();
      return;
    }
    this.#drop(false);
    clearTimeout(this.#retryTimer);
    this.#attempt = 0;
    if (media) this.#connect();
    else this.#set("idle", null);
  }

  /** Called when the hub is back after a break: a session that is not playing (no frame
   * for 2 s — no packet when audio only — and older than 3 s) starts again at once instead
   * of waiting for its timers; an attempt under way keeps its chance, but if it fails the
   * next one follows at once (the hub being back says the relay very likely is too). */
  nudge() {
    const current = this.#current;
    if (!this.#media) return;
    this.#attempt = 0;
    // Audio-only sessions count as playing only while packets still arrive: after a
    // server restart the old session is dead even if Chromium has not noticed yet.
    const lastMediaAt = this.audioOnly ? current?.lastPacketAt : current?.lastFrameAt;
    const playing = current && this.phase === "live" && performance.now() - lastMediaAt < 2_000;
    // A session still being set up gets its chance.
    const young = current && performance.now() - current.startedAt < 3_000;
    if (playing || young) return;
    if (this.#retryTimer) {
      // Waiting between attempts: the next one now.
      clearTimeout(this.#retryTimer);
      this.#retryTimer = setTimeout(() => this.#connect(), 0);
      return;
    }
    this.#restart(this.notice, "nudge");
  }

  /** Audio only by choice (`true`) or back to automatic. */
  setForcedAudio(on) {
    this.forcedAudio = on;
    this.#applyLayer();
  }

  #set(phase, notice) {
    this.phase = phase;
    this.notice = notice;
    this.#onChange();
  }

  /** Ends the current session: a lost one (`lost`) by closing its peer connection only,
   * a good one with a DELETE to the relay first. */
  #drop(lost) {
    const current = this.#current;
    this.#current = null;
    if (!current) return;
    if (lost) current.pc.close();
    else current.stop().catch(() => {});
  }

  /** Gives the current session up (`why`, for `lastLoss`) and tries again after a delay:
   * 250 ms first, then growing (at most 5 s), or every second while `waiting` (the relay
   * said 404: no publisher yet). */
  #restart(notice, why, { waiting = false } = {}) {
    const current = this.#current;
    this.lastLoss = why;
    this.#drop(true);
    if (current?.connected) {
      this.#hadLoss = true;
      this.lost += 1;
      // The next session starts with video and measures the link afresh: what made this
      // one weak (the relay, the path, a busy moment) may be gone.
      if (this.weak) {
        this.weak = false;
        this.#applyLayer();
      }
    }
    clearTimeout(this.#retryTimer);
    let delay = this.#attempt === 0 ? 250 : Math.min(MAX_RETRY_MS, backoffMs(this.#attempt - 1));
    if (waiting) delay = Math.min(delay, WAITING_RETRY_MS);
    this.#attempt += 1;
    this.#set(this.sessions > 0 ? "reconnecting" : "connecting", notice);
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  async #connect() {
    this.#retryTimer = null;
    const media = this.#media;
    if (!media) return;
    const pc = new RTCPeerConnection();
    pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
    const stream = new MediaStream();
    pc.addEventListener("track", ({ track }) => {
      stream.addTrack(track);
      if (this.#video.srcObject !== stream) this.#video.srcObject = stream;
    });
    const current = {
      pc,
      stop: async () => pc.close(),
      layerUrl: null,
      // `postAt` and `answeredAt` of the offer (set by `startSession`).
      timing: {},
      token: media.token,
      startedAt: performance.now(),
      lastFrames: 0,
      lastFrameAt: performance.now(),
      lastPackets: 0,
      lastPacketAt: performance.now(),
      lastVideoPackets: 0,
      lastVideoPacketAt: 0,
      notConnectedSince: null,
      window: [],
    };
    this.#current = current;
    this.framesDecoded = 0;
    if (this.phase === "idle") this.#set("connecting", null);
    pc.addEventListener("connectionstatechange", () => {
      if (this.#current !== current) return;
      if (pc.connectionState === "connected") {
        this.#attempt = 0;
        const first = !current.connected;
        if (first) {
          this.sessions += 1;
          // The first frame (and packet) is due from now on.
          current.lastFrameAt = performance.now();
          current.lastPacketAt = current.lastFrameAt;
        }
        current.connected = true;
        this.#set("live", null);
        if (first && this.#hadLoss) {
          this.#hadLoss = false;
          this.#onRecovered();
        }
      } else if (pc.connectionState === "failed" || pc.connectionState === "closed") {
        this.#restart({ key: "videoLost" }, `connection ${pc.connectionState}`);
      }
    });
    try {
      const url = new URL(media.whep, globalThis.location.href).href;
      const whep = await startSession(pc, url, media.token, current.timing);
      if (this.#current !== current) {
        // Given up meanwhile (or replaced): the relay may have a session for it.
        await whep.stop();
        return;
      }
      current.stop = () => whep.stop();
      current.layerUrl = whep.layerUrl;
      if (this.audioOnly || this.forcedAudio) this.#applyLayer();
    } catch (error) {
      if (this.#current !== current) return;
      const status = error instanceof WhipError ? error.status : 0;
      this.#restart(
        { key: status === 404 ? "videoWaiting" : "videoFailed", params: { status, reason: error.message } },
        `offer refused (${status})`,
        { waiting: status === 404 },
      );
    }
  }

  async #applyLayer() {
    const current = this.#current;
    const wanted = this.forcedAudio || this.weak;
    this.audioOnly = wanted;
    this.#onChange();
    if (!current?.layerUrl) return;
    try {
      await selectLayer(current.layerUrl, wanted ? "audio" : "auto", current.token);
    } catch (error) {
      console.info("rootcast: layer not changed: %s", error.message);
    }
  }

  /** Once a second: frames, losses, stalls and a connection stuck disconnected. The
   * connection's state is read here rather than only from its events, which Chromium does
   * not always fire when the peer vanishes. */
  async #check() {
    const current = this.#current;
    this.checkedAt = performance.now();
    if (!current || this.phase === "idle") return;
    const now = performance.now();
    const state = current.pc.connectionState;
    if (state === "connected") current.notConnectedSince = null;
    else current.notConnectedSince ??= now;
    const { postAt, answeredAt } = current.timing;
    let stuck = null;
    if (current.connected) {
      if (current.notConnectedSince != null && now - current.notConnectedSince > DISCONNECTED_MS) stuck = `${state} for ${DISCONNECTED_MS} ms`;
    } else if (now - current.startedAt > CONNECT_TIMEOUT_MS) {
      stuck = "not connected in time";
    } else if (postAt != null && answeredAt == null && now - postAt > ANSWER_TIMEOUT_MS) {
      stuck = "no answer to the offer";
    } else if (answeredAt != null && now - answeredAt > ICE_TIMEOUT_MS) {
      stuck = "not connected after the answer";
    }
    // Stalled: no frame (no packet at all when audio only) for STALL_MS; while the video's
    // packets still arrive (a busy machine's decoder is behind, a keyframe is on its way) it
    // gets DECODER_STALL_MS.
    const lastMediaAt = this.audioOnly ? current.lastPacketAt : current.lastFrameAt;
    const videoFlowing = !this.audioOnly && now - current.lastVideoPacketAt < 1_500;
    const stallAfter = videoFlowing ? DECODER_STALL_MS : STALL_MS;
    if (!stuck && current.connected && now - lastMediaAt > stallAfter) stuck = this.audioOnly ? "no packet" : "no frame";
    if (stuck) {
      this.#restart({ key: "videoLost" }, stuck);
      return;
    }
    if (state !== "connected") return;
    let frames = 0;
    let received = 0;
    let lost = 0;
    let video = 0;
    for (const entry of (await current.pc.getStats()).values()) {
      if (entry.type !== "inbound-rtp") continue;
      received += entry.packetsReceived ?? 0;
      lost += Math.max(0, entry.packetsLost ?? 0);
      if (entry.kind === "video") {
        frames += entry.framesDecoded ?? 0;
        video += entry.packetsReceived ?? 0;
      }
    }
    if (this.#current !== current) return;
    this.framesDecoded = frames;
    if (frames > current.lastFrames) {
      current.lastFrames = frames;
      current.lastFrameAt = now;
    }
    if (received > current.lastPackets) {
      current.lastPackets = received;
      current.lastPacketAt = now;
    }
    if (video > current.lastVideoPackets) {
      current.lastVideoPackets = video;
      current.lastVideoPacketAt = now;
    }
    current.window.push({ at: now, frames, received, lost, video });
    while (current.window.length > 0 && now - current.window[0].at > 5_000) current.window.shift();
    const first = current.window[0];
    if (!first || now - first.at < 4_000) return;
    const packets = received - first.received + (lost - first.lost);
    const lossShare = packets > 0 ? (lost - first.lost) / packets : 0;
    const fps = ((frames - first.frames) * 1000) / (now - first.at);
    // Video packets arriving whole but few frames decoded: the decoder is behind (a busy
    // machine), which audio only would not mend; the link is not weak.
    const videoRate = ((video - first.video) * 1000) / (now - first.at);
    const decoderBehind = videoRate >= DECODER_BEHIND_VIDEO_RATE && lossShare < DECODER_BEHIND_LOSS;
    const weak = lossShare > WEAK_LOSS || (!this.audioOnly && first.frames > 0 && packets > 0 && fps < 1 && !decoderBehind);
    if (weak && !this.weak) {
      this.weak = true;
      current.goodSince = null;
      this.#applyLayer();
    } else if (!weak && this.weak) {
      current.goodSince ??= now;
      if (now - current.goodSince > RECOVER_AFTER_MS) {
        this.weak = false;
        this.#applyLayer();
      }
    }
  }
}
