"""The server HTTP API through cent (5.x), checked from centrifuge-python clients.

Two users are connected: alice (client subscriptions to chat:room and chat:other) and bob
(chat:room). Every API method is called and its result checked, both its content and what
the clients see: publish (with tags, and skip_history), broadcast, subscribe / unsubscribe
(server-side subscription of a user, and removal of a client subscription), presence,
presence_stats, history (limit, since, reverse), history_remove, channels (with a
pattern), info, disconnect; and the errors: unknown namespace (102), a feature the
namespace doesn't have (108), a bad request (107), a wrong API key (HTTP 401).
"""

from cent import (
    BroadcastRequest,
    ChannelsRequest,
    CentApiResponseError,
    CentUnauthorizedError,
    DisconnectRequest,
    HistoryRemoveRequest,
    HistoryRequest,
    InfoRequest,
    PresenceRequest,
    PresenceStatsRequest,
    PublishRequest,
    StreamPosition,
    SubscribeRequest,
    UnsubscribeRequest,
)
from centrifuge import SubscriptionState

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

ROOM = "chat:room"
OTHER = "chat:other"
NEWS = "chat:news"


def api_error(e: BaseException, code: int, what: str) -> None:
    check(isinstance(e, CentApiResponseError), f"{what}: expected an API error {code}, got {e!r}")
    eq(e.code, code, f"{what}: error code")


async def main() -> None:
    api = Api()

    alice, _, alice_rec = new_client("alice")
    alice_id = (await connect(alice, alice_rec)).client
    bob, _, bob_rec = new_client("bob")
    bob_id = (await connect(bob, bob_rec)).client

    room, room_rec = new_subscription(alice, "alice", ROOM)
    other, other_rec = new_subscription(alice, "alice", OTHER)
    bob_room, bob_room_rec = new_subscription(bob, "bob", ROOM)
    for sub, rec in ((room, room_rec), (other, other_rec), (bob_room, bob_room_rec)):
        await within(WAIT, f"{rec.name}: subscribe()", sub.subscribe())
        await rec.next("subscribed", "subscribed")

    # publish
    data1 = {"text": "hello", "n": 1}
    res1 = await api(PublishRequest(channel=ROOM, data=data1, tags={"source": "cent"}))
    eq(res1.offset, 1, "publish result offset")
    check(res1.epoch != "", f"publish result without an epoch: {res1!r}")
    epoch = res1.epoch
    for rec in (room_rec, bob_room_rec):
        pub = (await rec.next("publication", "the published message")).pub
        eq(pub.data, data1, f"{rec.name}: publication data")
        eq(pub.offset, 1, f"{rec.name}: publication offset")
        eq(pub.tags, {"source": "cent"}, f"{rec.name}: publication tags")

    # broadcast
    data2 = {"text": "to both", "n": 2}
    bres = await api(BroadcastRequest(channels=[ROOM, OTHER], data=data2))
    eq(len(bres.responses), 2, "number of broadcast responses")
    for i, (channel, offset) in enumerate(((ROOM, 2), (OTHER, 1))):
        r = bres.responses[i]
        eq(r.error, None, f"broadcast response {i} ({channel}) error")
        check(r.result is not None, f"broadcast response {i} ({channel}) has no result: {r!r}")
        eq(r.result.offset, offset, f"broadcast response {i} ({channel}) offset")
        check(r.result.epoch != "", f"broadcast response {i} ({channel}) without an epoch")
    eq(bres.responses[0].result.epoch, epoch, "broadcast epoch of chat:room")
    for rec, channel in ((room_rec, ROOM), (other_rec, OTHER), (bob_room_rec, ROOM)):
        pub = (await rec.next("publication", f"the broadcast on {channel}")).pub
        eq(pub.data, data2, f"{rec.name}: broadcast data")

    # A client publication (allow_publish_for_subscriber) carries the publisher's info.
    data3 = {"text": "from alice", "n": 3}
    await within(WAIT, "alice publishes to chat:room", room.publish(data3))
    pub = (await bob_room_rec.next("publication", "alice's publication")).pub
    eq(pub.data, data3, "data of alice's publication")
    eq(pub.offset, 3, "offset of alice's publication")
    check(pub.info is not None, "a client publication without client info")
    eq((pub.info.user, pub.info.client), ("alice", alice_id), "info of alice's publication")

    # subscribe: a server-side subscription of bob to chat:news.
    await api(SubscribeRequest(user="bob", channel=NEWS, data={"why": "server-side"}))
    ssub = await bob_rec.next("server_subscribed", "the server-side subscription to chat:news")
    eq(ssub.channel, NEWS, "channel of the server-side subscription")
    eq(ssub.data, {"why": "server-side"}, "data of the server-side subscription")
    news1 = {"text": "news", "n": 1}
    await api(PublishRequest(channel=NEWS, data=news1))
    spub = await bob_rec.next("server_publication", "a publication on the server-side subscription")
    eq((spub.channel, spub.pub.data), (NEWS, news1), "server-side publication")
    news_presence = await api(PresenceRequest(channel=NEWS))
    eq(list(news_presence.presence), [bob_id], "presence of chat:news (bob's server-side subscription)")

    # unsubscribe: bob from chat:news (server-side) ...
    await api(UnsubscribeRequest(user="bob", channel=NEWS))
    uns = await bob_rec.next("server_unsubscribed", "the end of the server-side subscription")
    eq(uns.channel, NEWS, "channel of the server-side unsubscribe")
    await api(PublishRequest(channel=NEWS, data={"text": "nobody listens"}))
    marker = {"text": "marker", "n": 4}
    await api(PublishRequest(channel=ROOM, data=marker))
    await bob_room_rec.next("publication", "the marker", lambda ctx: ctx.pub.data == marker)
    eq(len(bob_rec.all("server_publication")), 1, "server-side publications bob got (after the unsubscribe: none)")
    await room_rec.next("publication", "alice's own publication", lambda ctx: ctx.pub.data == data3)
    await room_rec.next("publication", "the marker", lambda ctx: ctx.pub.data == marker)
    # ... and alice from chat:other (a client-side subscription: it ends, no resubscribe).
    await api(UnsubscribeRequest(user="alice", channel=OTHER))
    ended = await other_rec.next("unsubscribed", "the end of alice's chat:other subscription")
    check(ended.code < 2500, f"unsubscribe code {ended.code} would resubscribe (a server unsubscribe is final)")
    eq(other.state, SubscriptionState.UNSUBSCRIBED, "state of alice's chat:other subscription")

    # presence and presence_stats
    presence = await api(PresenceRequest(channel=ROOM))
    eq(sorted(presence.presence), sorted([alice_id, bob_id]), "client IDs in the presence of chat:room")
    eq(presence.presence[alice_id].user, "alice", "alice's user ID in presence")
    eq(presence.presence[bob_id].user, "bob", "bob's user ID in presence")
    eq(presence.presence[bob_id].client, bob_id, "bob's client ID in presence")
    stats = await api(PresenceStatsRequest(channel=ROOM))
    eq((stats.num_clients, stats.num_users), (2, 2), "presence_stats of chat:room")

    # history: limit, reverse, since; no limit = only the stream position.
    expected = [(1, data1), (2, data2), (3, data3), (4, marker)]
    hist = await api(HistoryRequest(channel=ROOM, limit=10))
    eq([(p.offset, p.data) for p in hist.publications], expected, "history of chat:room")
    eq((hist.offset, hist.epoch), (4, epoch), "history stream position")
    hist = await api(HistoryRequest(channel=ROOM, limit=2, reverse=True))
    eq([p.offset for p in hist.publications], [4, 3], "history with limit 2, reversed")
    hist = await api(HistoryRequest(channel=ROOM, limit=10, since=StreamPosition(offset=2, epoch=epoch)))
    eq([(p.offset, p.data) for p in hist.publications], expected[2:], "history since offset 2")
    hist = await api(HistoryRequest(channel=ROOM))
    eq(hist.publications, [], "history without a limit (only the position)")
    eq((hist.offset, hist.epoch), (4, epoch), "stream position of history without a limit")
    hist = await within(WAIT, "client history", room.history(limit=10))
    eq([(p.offset, p.data) for p in hist.publications], expected, "history of chat:room seen by the client")

    # channels
    chans = await api(ChannelsRequest())
    eq(sorted(chans.channels), [ROOM], "channels with subscribers")
    eq(chans.channels[ROOM].num_clients, 2, "subscribers of chat:room in channels")
    chans = await api(ChannelsRequest(pattern="chat:r*"))
    eq(sorted(chans.channels), [ROOM], "channels matching chat:r*")
    chans = await api(ChannelsRequest(pattern="nothing:*"))
    eq(chans.channels, {}, "channels matching nothing:*")

    # info
    info = await api(InfoRequest())
    eq(len(info.nodes), 1, "number of nodes")
    node = info.nodes[0]
    check(node.uid != "", f"node without a uid: {node!r}")
    check(node.name != "", f"node without a name: {node!r}")
    eq((node.num_clients, node.num_users, node.num_channels), (2, 2, 1), "clients, users and channels of the node")
    check(node.uptime >= 0, f"negative uptime: {node!r}")

    # history_remove: the publications go, the stream position stays.
    await api(HistoryRemoveRequest(channel=ROOM))
    hist = await api(HistoryRequest(channel=ROOM, limit=10))
    eq(hist.publications, [], "history after history_remove")
    eq((hist.offset, hist.epoch), (4, epoch), "stream position after history_remove")

    # publish with skip_history: delivered, not kept, and the stream doesn't move (a client
    # recovering from offset 5 must find nothing missing).
    data5 = {"text": "kept", "n": 5}
    res5 = await api(PublishRequest(channel=ROOM, data=data5))
    eq(res5.offset, 5, "offset of a publication after history_remove")
    skipped = {"text": "not kept", "n": 0}
    res = await api(PublishRequest(channel=ROOM, data=skipped, skip_history=True))
    eq((res.offset, res.epoch), (0, ""), "publish result of a skip_history publication (no stream position)")
    for rec in (room_rec, bob_room_rec):
        await rec.next("publication", "publication 5", lambda ctx: ctx.pub.data == data5)
        pub = (await rec.next("publication", "the skip_history publication")).pub
        eq(pub.data, skipped, f"{rec.name}: data of the skip_history publication")
        eq(pub.offset, 0, f"{rec.name}: offset of the skip_history publication (none)")
    hist = await api(HistoryRequest(channel=ROOM, limit=10))
    eq([(p.offset, p.data) for p in hist.publications], [(5, data5)], "history after a skip_history publish")
    eq((hist.offset, hist.epoch), (5, epoch), "stream position after a skip_history publish")

    # disconnect: bob, with the default (terminal) code.
    await api(DisconnectRequest(user="bob"))
    gone = await bob_rec.next("disconnected", "bob disconnected by the server")
    check(
        3500 <= gone.code < 4000 or 4500 <= gone.code < 5000,
        f"the default disconnect code {gone.code} lets the client reconnect",
    )
    eq(bob_rec.all("connecting")[1:], [], "bob reconnecting after a terminal disconnect")

    async def one_left():
        s = await api(PresenceStatsRequest(channel=ROOM))
        i = await api(InfoRequest())
        return (s.num_clients, s.num_users, i.nodes[0].num_clients) == (1, 1, 1), (s, i)

    await eventually(WAIT, "presence and info after bob was disconnected", one_left)

    # errors
    api_error(await api.error(PublishRequest(channel="nope:x", data={})), 102, "publish to an unknown namespace")
    api_error(await api.error(HistoryRequest(channel="plain", limit=10)), 108, "history of a channel without history")
    api_error(await api.error(PresenceRequest(channel="plain")), 108, "presence of a channel without presence")
    api_error(await api.error(DisconnectRequest(user="")), 107, "disconnect without a user")
    e = await Api(api_key="wrong-key").error(InfoRequest())
    check(isinstance(e, CentUnauthorizedError), f"a wrong API key: expected HTTP 401, got {e!r}")

    log("alice still connected:", alice_rec.all("disconnected") == [])
    eq(alice_rec.all("disconnected"), [], "alice's disconnects")
    await within(WAIT, "alice.disconnect()", alice.disconnect())


if __name__ == "__main__":
    run(main, "cent server API")
