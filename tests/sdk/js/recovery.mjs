// centrifuge-js (under Node, WebSocket from `ws`) against rootcast, with cent.js publishing
// through the server HTTP API.
//
//   node recovery.mjs recovered     history_size ≥ what is missed: the missed publications
//                                   come back exactly once, in order, recovered: true
//   node recovery.mjs unrecovered   history_size 3 and 5 missed: recovered: false
//
// Both: connect with a JWT, subscribe to chat:room, receive publications made with cent.js,
// check presence and presence stats (client and server API), join/leave, history; then the
// server API disconnects the client with a reconnect code (4000), cent.js publishes while
// the client is down (from the SDK's getData callback, which runs before the reconnect, so
// the publications are certain to fall in the gap), and the client reconnects and recovers.
//
// Environment: see lib.mjs (ROOTCAST_WS_URL, ROOTCAST_API_URL, ROOTCAST_API_KEY,
// ROOTCAST_TOKEN_ALICE, ROOTCAST_TOKEN_BOB).

import { check, done, eq, env, eventually, fail, log, overallTimeout, Recorder, sdk, within } from './lib.mjs';

const scenario = process.argv[2];
if (scenario !== 'recovered' && scenario !== 'unrecovered') {
    fail(`usage: node recovery.mjs recovered|unrecovered (got ${scenario})`);
}
overallTimeout(60_000, `centrifuge-js ${scenario}`);

const { Centrifuge } = sdk('centrifuge');
const { CentClient } = sdk('cent.js');
const WebSocket = sdk('ws');

const WS_URL = env('ROOTCAST_WS_URL');
const API_URL = env('ROOTCAST_API_URL');
const API_KEY = env('ROOTCAST_API_KEY');
const TOKEN_ALICE = env('ROOTCAST_TOKEN_ALICE');
const TOKEN_BOB = env('ROOTCAST_TOKEN_BOB');

const CHANNEL = 'chat:room';
const MISSED = 5;
const WAIT = 10_000; // for any one event

const api = new CentClient({ url: API_URL, apiKey: API_KEY });

async function publish(data) {
    const res = await within(WAIT, `cent.js publish ${JSON.stringify(data)}`, api.publish({ channel: CHANNEL, data }));
    log('cent.js publish ->', res);
    check(Number.isInteger(res.offset), `publish result has no integer offset: ${JSON.stringify(res)}`);
    check(typeof res.epoch === 'string' && res.epoch !== '', `publish result has no epoch: ${JSON.stringify(res)}`);
    return res;
}

// A hook run by getData before the next connection attempt (i.e. while disconnected).
let beforeNextConnect = null;
let connectAttempts = 0;

function newClient(name, token, rec) {
    const client = new Centrifuge(WS_URL, {
        websocket: WebSocket,
        token,
        name: 'rootcast-sdk-test',
        minReconnectDelay: 100,
        maxReconnectDelay: 1000,
        timeout: 5000,
        getData: async () => {
            connectAttempts++;
            if (rec.name === 'alice' && beforeNextConnect) {
                const hook = beforeNextConnect;
                beforeNextConnect = null;
                await hook();
            }
            return null;
        },
    });
    for (const kind of ['connecting', 'connected', 'disconnected', 'error']) {
        client.on(kind, (ctx) => {
            log(`${name}: client ${kind}`, ctx);
            rec.push(kind, ctx);
        });
    }
    return client;
}

function watchSubscription(name, sub, rec) {
    for (const kind of ['subscribing', 'subscribed', 'unsubscribed', 'publication', 'join', 'leave', 'error']) {
        sub.on(kind, (ctx) => {
            log(`${name}: ${sub.channel} ${kind}`, ctx);
            rec.push(kind, ctx);
        });
    }
}

// ---------------------------------------------------------------------------------------

const aliceRec = new Recorder('alice');
const alice = newClient('alice', TOKEN_ALICE, aliceRec);
alice.connect();
eq((await aliceRec.next('connecting', WAIT, 'connecting (connect called)')).code, 0, 'code of the first connecting event');
const connected = await aliceRec.next('connected', WAIT, 'connected');
check(typeof connected.client === 'string' && connected.client !== '', `connected without a client ID: ${JSON.stringify(connected)}`);
eq(connected.transport, 'websocket', 'transport');
const firstClientId = connected.client;

const subRec = new Recorder(`alice ${CHANNEL}`);
const sub = alice.newSubscription(CHANNEL, { joinLeave: true });
watchSubscription('alice', sub, subRec);
sub.subscribe();
const subscribed = await subRec.next('subscribed', WAIT, 'subscribed');
eq(subscribed.recoverable, true, 'subscribed.recoverable (force_recovery is on for chat:)');
eq(subscribed.wasRecovering, false, 'subscribed.wasRecovering on the first subscribe');
eq(subscribed.recovered, false, 'subscribed.recovered on the first subscribe');
check(subscribed.streamPosition !== undefined, 'subscribed without a streamPosition on a recoverable channel');
eq(subscribed.streamPosition.offset, 0, 'stream offset of a new channel');
const epoch = subscribed.streamPosition.epoch;
check(typeof epoch === 'string' && epoch !== '', `stream epoch is empty: ${JSON.stringify(subscribed.streamPosition)}`);
// As in Centrifugo, a subscriber is in the channel when its own join is published.
const ownJoin = await subRec.next('join', WAIT, "alice's own join");
eq(ownJoin.info.user, 'alice', "user in alice's own join event");

// Live publications through the server API.
const live = scenario === 'recovered' ? 3 : 1;
for (let i = 1; i <= live; i++) {
    const data = { kind: 'live', n: i, text: `live message ${i}` };
    const res = await publish(data);
    eq(res.offset, i, `offset of live publication ${i}`);
    eq(res.epoch, epoch, 'epoch in the publish result');
    const pub = await subRec.next('publication', WAIT, `live publication ${i}`);
    eq(pub.data, data, `data of live publication ${i}`);
    eq(pub.offset, i, `offset of live publication ${i} as received`);
    eq(pub.channel, CHANNEL, 'publication channel');
    check(pub.info === undefined, `a server API publication carries client info: ${JSON.stringify(pub.info)}`);
}

// Presence, from the client and from the server API.
{
    const presence = await within(WAIT, 'sub.presence()', sub.presence());
    log('presence', presence);
    eq(Object.keys(presence.clients), [firstClientId], 'client IDs in presence');
    eq(presence.clients[firstClientId].user, 'alice', 'user in presence');
    eq(presence.clients[firstClientId].client, firstClientId, 'client in presence');
    const stats = await within(WAIT, 'sub.presenceStats()', sub.presenceStats());
    eq(stats, { numClients: 1, numUsers: 1 }, 'sub.presenceStats()');
    const apiPresence = await within(WAIT, 'cent.js getPresence', api.getPresence({ channel: CHANNEL }));
    log('cent.js presence ->', apiPresence);
    eq(Object.keys(apiPresence.presence), [firstClientId], 'client IDs in the server API presence');
    eq(apiPresence.presence[firstClientId].user, 'alice', 'user in the server API presence');
    const apiStats = await within(WAIT, 'cent.js getPresenceStats', api.getPresenceStats({ channel: CHANNEL }));
    eq(apiStats, { num_clients: 1, num_users: 1 }, 'server API presence_stats');
}

// A second user: join, presence of two, leave.
{
    const bobRec = new Recorder('bob');
    const bob = newClient('bob', TOKEN_BOB, bobRec);
    bob.connect();
    const bobConnected = await bobRec.next('connected', WAIT, 'bob connected');
    const bobSub = bob.newSubscription(CHANNEL);
    watchSubscription('bob', bobSub, bobRec);
    bobSub.subscribe();
    await bobRec.next('subscribed', WAIT, 'bob subscribed');
    const join = await subRec.next('join', WAIT, 'join of bob', (ctx) => ctx.info.user === 'bob');
    eq(join.info.user, 'bob', 'user in the join event');
    eq(join.info.client, bobConnected.client, 'client in the join event');
    const stats = await within(WAIT, 'sub.presenceStats() with bob', sub.presenceStats());
    eq(stats, { numClients: 2, numUsers: 2 }, 'presence stats with alice and bob');
    const presence = await within(WAIT, 'bobSub.presence()', bobSub.presence());
    eq(Object.keys(presence.clients).sort(), [firstClientId, bobConnected.client].sort(), 'client IDs in presence with bob');
    bob.disconnect();
    const leave = await subRec.next('leave', WAIT, 'leave of bob');
    eq(leave.info.user, 'bob', 'user in the leave event');
    eq(leave.info.client, bobConnected.client, 'client in the leave event');
    await eventually(WAIT, 'presence stats back to 1 after bob left', async () => {
        const s = await within(WAIT, 'cent.js getPresenceStats', api.getPresenceStats({ channel: CHANNEL }));
        return { ok: s.num_clients === 1 && s.num_users === 1, seen: s };
    });
}

// History, from the client and from the server API.
{
    const hist = await within(WAIT, 'sub.history()', sub.history({ limit: 10 }));
    log('history', hist);
    eq(hist.offset, live, 'history top offset');
    eq(hist.epoch, epoch, 'history epoch');
    eq(hist.publications.map((p) => p.offset), [...Array(live).keys()].map((i) => i + 1), 'history offsets');
    eq(hist.publications.map((p) => p.data.n), [...Array(live).keys()].map((i) => i + 1), 'history payloads');
    const apiHist = await within(WAIT, 'cent.js getHistory', api.getHistory({ channel: CHANNEL, limit: 10 }));
    eq(apiHist.offset, live, 'server API history offset');
    eq(apiHist.epoch, epoch, 'server API history epoch');
    eq(apiHist.publications.map((p) => p.data), hist.publications.map((p) => p.data), 'server API history payloads');
}

// Lose the connection; publish while it is down; reconnect and recover.
const missed = [];
beforeNextConnect = async () => {
    log(`alice is disconnected: publishing ${MISSED} publications before it reconnects`);
    for (let i = 1; i <= MISSED; i++) {
        const data = { kind: 'missed', n: i, text: `missed message ${i}` };
        const res = await publish(data);
        missed.push({ data, offset: res.offset });
    }
};
const connectsBefore = connectAttempts;
const discRes = await within(WAIT, 'cent.js disconnect', api.disconnect({ user: 'alice', disconnect: { code: 4000, reason: 'test reconnect' } }));
log('cent.js disconnect ->', discRes);
const connecting = await aliceRec.next('connecting', WAIT, 'connecting after the server disconnected alice');
eq(connecting.code, 4000, 'code of the disconnect (the one given to the disconnect API)');
eq(connecting.reason, 'test reconnect', 'reason of the disconnect');
await subRec.next('subscribing', WAIT, 'subscribing after the disconnect');
const reconnected = await aliceRec.next('connected', WAIT, 'connected again');
check(reconnected.client !== firstClientId, 'the new connection has the old client ID');
check(connectAttempts > connectsBefore, 'the client reconnected without a new connection attempt');
eq(missed.length, MISSED, 'publications made while alice was disconnected');
eq(missed.map((m) => m.offset), [...Array(MISSED).keys()].map((i) => live + 1 + i), 'offsets of the missed publications');

const resubscribed = await subRec.next('subscribed', WAIT, 'subscribed again');
// The recovered publications come right after the subscribed event, before this code runs.
const afterResubscribe = subRec.taken.subscribed;
eq(resubscribed.wasRecovering, true, 'resubscribed.wasRecovering');
eq(resubscribed.recoverable, true, 'resubscribed.recoverable');
check(resubscribed.streamPosition !== undefined, 'resubscribed without a streamPosition');
eq(resubscribed.streamPosition.epoch, epoch, 'epoch after the reconnect');

if (scenario === 'recovered') {
    eq(resubscribed.recovered, true, `resubscribed.recovered (history holds all ${MISSED} missed publications)`);
} else {
    eq(resubscribed.recovered, false, `resubscribed.recovered (history holds 3 publications, ${MISSED} were missed)`);
}

// A live publication after the recovery marks the end: everything before it in the
// subscription's events is what the recovery delivered.
const sentinelData = { kind: 'sentinel', text: 'after the reconnect' };
const sentinel = await publish(sentinelData);
eq(sentinel.offset, live + MISSED + 1, 'offset of the publication after the reconnect');
await subRec.next('publication', WAIT, 'the publication made after the reconnect', (p) => p.data && p.data.kind === 'sentinel');
const delivered = subRec.events.slice(afterResubscribe).filter((e) => e.kind === 'publication').map((e) => e.ctx);
log('delivered after the resubscribe', delivered.map((p) => ({ offset: p.offset, data: p.data })));

if (scenario === 'recovered') {
    eq(
        delivered.map((p) => ({ offset: p.offset, data: p.data })),
        [...missed, { data: sentinelData, offset: sentinel.offset }].map((m) => ({ offset: m.offset, data: m.data })),
        'publications after the reconnect: each missed one exactly once, in order, then the live one',
    );
} else {
    const offsets = delivered.map((p) => p.offset);
    for (let i = 1; i < offsets.length; i++) {
        check(offsets[i] > offsets[i - 1], `publications after the reconnect out of order or repeated: offsets ${offsets}`);
    }
    eq(delivered[delivered.length - 1].data, sentinelData, 'last publication after the reconnect');
    check(delivered.every((p) => p.data.kind !== 'live'), `a publication delivered before the disconnect came again: ${JSON.stringify(delivered)}`);
    // history_size = 3: the server keeps only the last three.
    const apiHist = await within(WAIT, 'cent.js getHistory', api.getHistory({ channel: CHANNEL, limit: 10 }));
    log('cent.js history ->', apiHist);
    eq(apiHist.publications.map((p) => p.offset), [sentinel.offset - 2, sentinel.offset - 1, sentinel.offset], 'offsets kept in a history of size 3');
    eq(apiHist.offset, sentinel.offset, 'history top offset');
}

eq(aliceRec.all('disconnected').length, 0, 'alice disconnected events (a reconnect code must not end the client)');
eq(subRec.all('unsubscribed').length, 0, 'unsubscribed events of alice\'s subscription');
eq(subRec.all('error').length, 0, 'subscription errors');

alice.disconnect();
await aliceRec.next('disconnected', WAIT, 'disconnected after disconnect()');
done(`centrifuge-js ${scenario}`);
