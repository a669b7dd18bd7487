"""centrifuge-python against rootcast, with cent (5.x) publishing through the server HTTP API.

    python recovery.py recovered     history_size >= what is missed: the missed publications
                                     come back exactly once, in order, recovered: True
    python recovery.py unrecovered   history_size 3 and 5 missed: recovered: False

Both: connect with a JWT (made with PyJWT), subscribe to chat:room, receive publications made
with cent, check presence and presence stats (client and server API), join/leave and
history; then the server API disconnects the client with a reconnect code (4000), cent
publishes while the client is down (from the on_connecting handler, which the SDK awaits
before it plans the reconnect, so the publications are certain to fall in the gap), and the
client reconnects and recovers.
"""

import sys

from cent import (
    Disconnect,
    DisconnectRequest,
    HistoryRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
)

from sdktest import (
    Api,
    check,
    connect,
    eq,
    eventually,
    log,
    new_client,
    new_subscription,
    run,
    within,
    WAIT,
)

CHANNEL = "chat:room"
MISSED = 5


async def main(scenario: str) -> None:
    api = Api()

    async def publish(data):
        res = await api(PublishRequest(channel=CHANNEL, data=data))
        check(isinstance(res.offset, int) and res.offset > 0, f"publish result without an offset: {res!r}")
        check(res.epoch != "", f"publish result without an epoch: {res!r}")
        return res

    alice, alice_events, alice_rec = new_client("alice")
    connected = await connect(alice, alice_rec)
    first_client_id = connected.client

    sub, sub_rec = new_subscription(alice, "alice", CHANNEL, join_leave=True)
    await within(WAIT, "sub.subscribe()", sub.subscribe())
    subscribed = await sub_rec.next("subscribed", "subscribed")
    eq(subscribed.recoverable, True, "subscribed.recoverable (force_recovery is on for chat:)")
    eq(subscribed.was_recovering, False, "subscribed.was_recovering on the first subscribe")
    eq(subscribed.recovered, False, "subscribed.recovered on the first subscribe")
    check(subscribed.stream_position is not None, "subscribed without a stream position")
    eq(subscribed.stream_position.offset, 0, "stream offset of a new channel")
    epoch = subscribed.stream_position.epoch
    check(epoch != "", f"empty stream epoch: {subscribed.stream_position!r}")
    # As in Centrifugo, a subscriber is in the channel when its own join is published.
    own_join = await sub_rec.next("join", "alice's own join")
    eq(own_join.info.user, "alice", "user in alice's own join event")

    live = 3 if scenario == "recovered" else 1
    for i in range(1, live + 1):
        data = {"kind": "live", "n": i, "text": f"live message {i}"}
        res = await publish(data)
        eq(res.offset, i, f"offset of live publication {i}")
        eq(res.epoch, epoch, "epoch in the publish result")
        pub = (await sub_rec.next("publication", f"live publication {i}")).pub
        eq(pub.data, data, f"data of live publication {i}")
        eq(pub.offset, i, f"offset of live publication {i} as received")
        eq(pub.info, None, "client info of a server API publication")

    # Presence, from the client and from the server API.
    presence = await within(WAIT, "sub.presence()", sub.presence())
    eq(list(presence.clients), [first_client_id], "client IDs in presence")
    eq(presence.clients[first_client_id].user, "alice", "user in presence")
    eq(presence.clients[first_client_id].client, first_client_id, "client in presence")
    stats = await within(WAIT, "sub.presence_stats()", sub.presence_stats())
    eq((stats.num_clients, stats.num_users), (1, 1), "sub.presence_stats()")
    api_presence = await api(PresenceRequest(channel=CHANNEL))
    eq(list(api_presence.presence), [first_client_id], "client IDs in the server API presence")
    eq(api_presence.presence[first_client_id].user, "alice", "user in the server API presence")
    eq(api_presence.presence[first_client_id].client, first_client_id, "client in the server API presence")
    api_stats = await api(PresenceStatsRequest(channel=CHANNEL))
    eq((api_stats.num_clients, api_stats.num_users), (1, 1), "server API presence_stats")

    # A second user: join, presence of two, leave.
    bob, _, bob_rec = new_client("bob")
    bob_connected = await connect(bob, bob_rec)
    bob_sub, bob_sub_rec = new_subscription(bob, "bob", CHANNEL)
    await within(WAIT, "bob_sub.subscribe()", bob_sub.subscribe())
    await bob_sub_rec.next("subscribed", "bob subscribed")
    join = await sub_rec.next("join", "join of bob", lambda ctx: ctx.info.user == "bob")
    eq(join.info.user, "bob", "user in the join event")
    eq(join.info.client, bob_connected.client, "client in the join event")
    stats = await within(WAIT, "sub.presence_stats() with bob", sub.presence_stats())
    eq((stats.num_clients, stats.num_users), (2, 2), "presence stats with alice and bob")
    presence = await within(WAIT, "bob_sub.presence()", bob_sub.presence())
    eq(sorted(presence.clients), sorted([first_client_id, bob_connected.client]), "client IDs in presence with bob")
    await within(WAIT, "bob.disconnect()", bob.disconnect())
    leave = await sub_rec.next("leave", "leave of bob")
    eq(leave.info.user, "bob", "user in the leave event")
    eq(leave.info.client, bob_connected.client, "client in the leave event")

    async def back_to_one():
        s = await api(PresenceStatsRequest(channel=CHANNEL))
        return (s.num_clients, s.num_users) == (1, 1), s

    await eventually(WAIT, "presence stats back to 1 after bob left", back_to_one)

    # History, from the client and from the server API.
    hist = await within(WAIT, "sub.history()", sub.history(limit=10))
    eq(hist.offset, live, "history top offset")
    eq(hist.epoch, epoch, "history epoch")
    eq([p.offset for p in hist.publications], list(range(1, live + 1)), "history offsets")
    eq([p.data["n"] for p in hist.publications], list(range(1, live + 1)), "history payloads")
    api_hist = await api(HistoryRequest(channel=CHANNEL, limit=10))
    eq(api_hist.offset, live, "server API history offset")
    eq(api_hist.epoch, epoch, "server API history epoch")
    eq([p.data for p in api_hist.publications], [p.data for p in hist.publications], "server API history payloads")

    # Lose the connection; publish while it is down; reconnect and recover.
    missed = []

    async def publish_while_down():
        log(f"alice is disconnected: publishing {MISSED} publications before it reconnects")
        for i in range(1, MISSED + 1):
            data = {"kind": "missed", "n": i, "text": f"missed message {i}"}
            res = await publish(data)
            missed.append((res.offset, data))

    alice_events.on_connecting_hook = publish_while_down
    await api(DisconnectRequest(user="alice", disconnect=Disconnect(code=4000, reason="test reconnect")))
    connecting = await alice_rec.next("connecting", "connecting after the server disconnected alice")
    eq(connecting.code, 4000, "code of the disconnect (the one given to the disconnect API)")
    eq(connecting.reason, "test reconnect", "reason of the disconnect")
    reconnected = await alice_rec.next("connected", "connected again")
    check(reconnected.client != first_client_id, "the new connection has the old client ID")
    eq(len(missed), MISSED, "publications made while alice was disconnected")
    eq([o for o, _ in missed], list(range(live + 1, live + MISSED + 1)), "offsets of the missed publications")

    resubscribed = await sub_rec.next("subscribed", "subscribed again")
    # The recovered publications come right after the subscribed event, maybe before this runs.
    after_resubscribe = sub_rec.taken["subscribed"]
    eq(resubscribed.was_recovering, True, "resubscribed.was_recovering")
    eq(resubscribed.recoverable, True, "resubscribed.recoverable")
    check(resubscribed.stream_position is not None, "resubscribed without a stream position")
    eq(resubscribed.stream_position.epoch, epoch, "epoch after the reconnect")
    if scenario == "recovered":
        eq(resubscribed.recovered, True, f"resubscribed.recovered (history holds all {MISSED} missed publications)")
    else:
        eq(resubscribed.recovered, False, f"resubscribed.recovered (history holds 3, {MISSED} were missed)")

    # A live publication after the recovery marks the end of what the recovery delivered.
    sentinel_data = {"kind": "sentinel", "text": "after the reconnect"}
    sentinel = await publish(sentinel_data)
    eq(sentinel.offset, live + MISSED + 1, "offset of the publication after the reconnect")
    await sub_rec.next(
        "publication",
        "the publication made after the reconnect",
        lambda ctx: isinstance(ctx.pub.data, dict) and ctx.pub.data.get("kind") == "sentinel",
    )
    delivered = [ctx.pub for kind, ctx in sub_rec.events[after_resubscribe:] if kind == "publication"]
    log("delivered after the resubscribe:", [(p.offset, p.data) for p in delivered])

    if scenario == "recovered":
        eq(
            [(p.offset, p.data) for p in delivered],
            missed + [(sentinel.offset, sentinel_data)],
            "publications after the reconnect: each missed one exactly once, in order, then the live one",
        )
    else:
        offsets = [p.offset for p in delivered]
        check(
            all(a < b for a, b in zip(offsets, offsets[1:])),
            f"publications after the reconnect out of order or repeated: offsets {offsets}",
        )
        eq(delivered[-1].data, sentinel_data, "last publication after the reconnect")
        check(
            all(p.data.get("kind") != "live" for p in delivered),
            f"a publication delivered before the disconnect came again: {delivered!r}",
        )
        api_hist = await api(HistoryRequest(channel=CHANNEL, limit=10))
        eq(
            [p.offset for p in api_hist.publications],
            [sentinel.offset - 2, sentinel.offset - 1, sentinel.offset],
            "offsets kept in a history of size 3",
        )
        eq(api_hist.offset, sentinel.offset, "history top offset")

    eq(alice_rec.all("disconnected"), [], "alice disconnected events (a reconnect code must not end the client)")
    eq(sub_rec.all("unsubscribed"), [], "unsubscribed events of alice's subscription")
    eq(sub_rec.all("error"), [], "subscription errors")

    await within(WAIT, "alice.disconnect()", alice.disconnect())
    await alice_rec.next("disconnected", "disconnected after disconnect()")


if __name__ == "__main__":
    scenario = sys.argv[1] if len(sys.argv) > 1 else ""
    if scenario not in ("recovered", "unrecovered"):
        fail_msg = f"usage: python recovery.py recovered|unrecovered (got {scenario!r})"
        print(f"FAIL: {fail_msg}", flush=True)
        sys.exit(2)
    run(lambda: main(scenario), f"centrifuge-python {scenario}")
