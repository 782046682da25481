"""Deterministic generator of realistic Discord gateway traffic for the benchmarks.

Everything here is generated from a fixed seed: the same call returns the same
bytes on every machine and every run, so two benchmark runs decode identical
frames.

Object shapes (field sets, nesting, value styles, which fields are null) follow
real gateway captures kept in ``shared/realdata/``; no captured payload is
copied, only their shapes are imitated:

* DiscordBM/DiscordBM ``Tests/DiscordBMTests/DecompressionTests.swift``
  (76709e7, Apache-2.0): a READY and a GUILD_CREATE as sent on the wire. They
  show Discord's serialisation: the envelope in the order ``t, s, op, d``,
  compact, and the keys of every small object in *reverse* alphabetical order
  (the GUILD_CREATE object itself, having more than 32 keys, comes in hash
  order; ``GUILD_KEY_ORDER`` below is the order of that capture).
* manelsen/Accord.jl ``test/integration/fixtures/`` (81c767a, MIT): sanitized
  2026 captures of MESSAGE_CREATE, MESSAGE_REACTION_ADD, GUILD_MEMBER_UPDATE,
  GUILD_CREATE, READY, VOICE_STATE_UPDATE, THREAD_CREATE: today's field sets
  (``collectibles``, ``primary_guild``, ``avatar_decoration_data``, role
  ``colors``, ...).
* freya022/discord-zstd-java (Apache-2.0): a 2025 READY.

PRESENCE_UPDATE and TYPING_START have no capture there; they follow Discord's
documented shapes (``user`` with only ``id``, ``status``, ``client_status``,
``activities`` of game / listening / custom-status kinds).

Public functions
----------------
``payloads(mix)``        list of payload bytes (compact JSON, canonical envelope)
``zlib_stream(mix)``     the same recorded as zlib-stream websocket messages:
                         one ``zlib.compressobj()`` for the connection,
                         ``Z_SYNC_FLUSH`` after each payload (one message each)
``zstd_stream(mix)``     zstd-stream as Discord sends it: one frame left open,
                         ``ZstdCompressor.compress(p, FLUSH_BLOCK)`` per payload
``zstd_frames(mix)``     one closed zstd frame per payload (Spacebar's way)
``messages(mix, kind)``  one of the three above by name ("zlib", "zstd", "zstd-frames")
``stats(mix)``           counts and sizes, for the report

Mixes (``MIXES``): "realistic", "presence-heavy", "huge", "ack-storm" and
"huge-tail" (the huge GUILD_CREATE followed by small events, for the memory
probe). Every stream starts with HELLO like a real connection. Results are
cached per process (module level), so benchmarks never time the generation.

``python benches/traffic.py`` prints the statistics of every mix.
"""

from __future__ import annotations

import random
import time
import zlib
from typing import Any, Callable, Optional

import orjson

try:  # Python 3.14+
    from compression.zstd import ZstdCompressor  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - depends on the Python version
    from backports.zstd import ZstdCompressor  # type: ignore[import-not-found,no-redef]

__all__ = [
    "SEED",
    "MIXES",
    "payloads",
    "zlib_stream",
    "zstd_stream",
    "zstd_frames",
    "messages",
    "stats",
    "expected_last_seq",
]

SEED = 0x6D696A  # "mij"

_DISCORD_EPOCH_MS = 1420070400000
_START_MS = 1772236515588  # 2026-02-27, the time of the Accord.jl captures

# Order of the keys of a GUILD_CREATE's ``d`` as Discord sent it (DiscordBM
# capture), with the fields that only newer captures (Accord.jl) have appended.
GUILD_KEY_ORDER = (
    "mfa_level nsfw voice_states region premium_tier emojis stickers members "
    "explicit_content_filter max_video_channel_users banner splash application_id "
    "nsfw_level large application_command_counts channels default_message_notifications "
    "afk_timeout premium_progress_bar_enabled max_stage_video_channel_users "
    "stage_instances id max_members hub_type presences joined_at preferred_locale icon "
    "threads embedded_activities member_count premium_subscription_count "
    "public_updates_channel_id description lazy guild_scheduled_events owner_id "
    "unavailable roles guild_hashes afk_channel_id verification_level vanity_url_code "
    "name discovery_splash system_channel_flags system_channel_id rules_channel_id "
    "features soundboard_sounds activity_instances incidents_data version "
    "safety_alerts_channel_id latest_onboarding_question_id inventory_settings "
    "home_header profile owner_configured_content_level moderator_reporting "
    "premium_progress_bar_enabled_user_updated_at premium_features"
).split()

_SYLLABLES = (
    "ka ri to mo na shi el ar on is ve lo xa qu dr ag bo ne th ur ys pa fi "
    "zen ko la mi ra vo da te sa ni cor wyn fel ix an"
).split()
_WORDS = (
    "the a to and of is it you that in i for this on with have be just not but "
    "what so can are was lol like do if get my me your we all at no yes ok "
    "gonna think know about one time how now they out good server bot game play "
    "tonight anyone update patch build deploy works broken fixed thanks gg wp "
    "brb afk rank match team queue stream clip meme link voice chat role mod "
    "channel pin ping docs error python rust code test merge release"
).split()
_UNICODE_BITS = ["héllo", "ça va", "naïve", "Grüße", "日本語", "привет", "😂", "👍", "🔥", "❤️", "✨", "🎉"]
_GAMES = [
    ("Minecraft", "356875570916753438"),
    ("Visual Studio Code", "383226320970055681"),
    ("League of Legends", "401518684763586560"),
    ("Counter-Strike 2", "1158877933042143272"),
    ("Valorant", "700136079562375258"),
    ("Fortnite", "432980957394370572"),
    ("Rocket League", "356877880938070016"),
    ("Genshin Impact", "762434991303950386"),
]
_STATUSES = ["online", "online", "online", "idle", "dnd", "offline"]
_PLATFORMS = ["desktop", "desktop", "mobile", "web"]
_LOCALES = ["en-US", "en-GB", "de", "fr", "es-ES", "pt-BR", "ja", "ru"]


def _o(**kw: Any) -> dict:
    """A small object with its keys in Discord's reverse alphabetical order."""
    return dict(sorted(kw.items(), reverse=True))


class _World:
    """The users, guilds and channels one bot sees, and a clock and sequence."""

    def __init__(self, seed: int, n_users: int = 5000) -> None:
        self.r = random.Random(seed)
        self.ms = _START_MS
        self.seq = 0
        self._counter = 0
        self.users = [self._user() for _ in range(n_users)]
        self.guilds: list[dict] = []

    # -- primitives -------------------------------------------------------

    def tick(self, max_ms: int = 900) -> None:
        self.ms += self.r.randint(1, max_ms)

    def snowflake(self, ms: Optional[int] = None) -> str:
        self._counter = (self._counter + 1) & 0xFFF
        ms = self.ms if ms is None else ms
        return str(((ms - _DISCORD_EPOCH_MS) << 22) | (self.r.randint(0, 31) << 17) | (self.r.randint(0, 31) << 12) | self._counter)

    def old_snowflake(self) -> str:
        return self.snowflake(self.ms - self.r.randint(86_400_000, 5 * 365 * 86_400_000))

    def hash32(self) -> str:
        return "%032x" % self.r.getrandbits(128)

    def iso(self, ms: Optional[int] = None) -> str:
        ms = self.ms if ms is None else ms
        t = time.gmtime(ms // 1000)
        return time.strftime("%Y-%m-%dT%H:%M:%S", t) + ".%03d000+00:00" % (ms % 1000)

    def name(self, lo: int = 2, hi: int = 4) -> str:
        r = self.r
        return "".join(r.choice(_SYLLABLES) for _ in range(r.randint(lo, hi)))

    def text(self, lo: int, hi: int) -> str:
        r = self.r
        words = [r.choice(_WORDS) for _ in range(r.randint(lo, hi))]
        if r.random() < 0.3:
            words.insert(r.randrange(len(words) + 1), r.choice(_UNICODE_BITS))
        return " ".join(words)

    # -- objects ------------------------------------------------------------

    def _user(self) -> dict:
        r = self.r
        tagged = r.random() < 0.15
        guild_tag = _o(identity_guild_id=self.old_snowflake(), tag=self.name(1, 1)[:4].upper(), badge=self.hash32(), identity_enabled=True) if tagged else None
        user = _o(
            username=self.name().lower() + (str(r.randint(0, 999)) if r.random() < 0.4 else ""),
            public_flags=r.choice((0, 0, 0, 64, 128, 256, 4194304)),
            id=self.old_snowflake(),
            global_name=self.name().capitalize() if r.random() < 0.8 else None,
            display_name_styles=None,
            discriminator="0",
            collectibles=None,
            clan=guild_tag,
            primary_guild=guild_tag,
            avatar_decoration_data=_o(expires_at=None, asset=self.hash32(), sku_id=self.old_snowflake()) if r.random() < 0.1 else None,
            avatar=("a_" if r.random() < 0.05 else "") + self.hash32() if r.random() < 0.85 else None,
        )
        if r.random() < 0.03:
            user = _o(**user, bot=True)
        return user

    def member(self, user: dict, guild: Optional[dict], *, with_user: bool = True) -> dict:
        r = self.r
        roles = guild["role_ids"] if guild else []
        m = dict(
            roles=r.sample(roles, min(len(roles), r.choice((0, 0, 1, 1, 2, 3, 5)))),
            premium_since=self.iso(self.ms - r.randint(10**8, 10**10)) if r.random() < 0.05 else None,
            pending=False,
            nick=self.name().capitalize() if r.random() < 0.15 else None,
            mute=False,
            joined_at=self.iso(self.ms - r.randint(10**7, 10**11)),
            flags=r.choice((0, 0, 0, 2, 10)),
            deaf=False,
            communication_disabled_until=None,
            banner=None,
            avatar=None,
        )
        if with_user:
            m["user"] = user
        return _o(**m)

    def role(self, position: int) -> dict:
        r = self.r
        color = r.choice((0, 0, r.getrandbits(24)))
        return _o(
            version=self.ms - r.randint(0, 10**10),
            unicode_emoji=None,
            tags=_o(bot_id=self.old_snowflake()) if r.random() < 0.1 else {},
            position=position,
            permissions=str(r.getrandbits(r.choice((3, 20, 40, 51)))),
            name=self.name().capitalize(),
            mentionable=r.random() < 0.3,
            managed=False,
            id=self.old_snowflake(),
            icon=None,
            hoist=r.random() < 0.3,
            flags=0,
            colors=_o(secondary_color=None, tertiary_color=None, primary_color=color),
            color=color,
        )

    def channel(self, kind: int, position: int, parent: Optional[str]) -> dict:
        r = self.r
        c = dict(
            version=self.ms - r.randint(0, 10**10),
            type=kind,
            position=position,
            permission_overwrites=[
                _o(type=r.choice((0, 1)), id=self.old_snowflake(), deny=str(r.getrandbits(r.choice((0, 11, 33)))), allow=str(r.getrandbits(r.choice((0, 11, 33)))))
                for _ in range(r.choice((0, 0, 1, 2, 4)))
            ],
            name=self.name().lower() + ("-" + self.name(1, 2) if r.random() < 0.5 else ""),
            id=self.old_snowflake(),
            flags=0,
        )
        if kind != 4:
            c.update(parent_id=parent, rate_limit_per_user=r.choice((0, 0, 0, 5, 30)), last_message_id=self.old_snowflake())
        if kind == 0:
            c.update(topic=self.text(3, 20) if r.random() < 0.5 else None, last_pin_timestamp=self.iso(self.ms - r.randint(10**6, 10**10)) if r.random() < 0.5 else None)
        elif kind == 2:
            c.update(user_limit=r.choice((0, 0, 10, 99)), rtc_region=None, bitrate=64000, status=None, icon_emoji=_o(name=self.name(), id=None))
        return _o(**c)

    def emoji(self) -> dict:
        r = self.r
        return _o(version=0, roles=[], require_colons=True, name=self.name().capitalize(), managed=False, id=self.old_snowflake(), available=True, animated=r.random() < 0.2)

    def activity(self) -> dict:
        r = self.r
        x = r.random()
        if x < 0.35:
            return _o(type=4, state=self.text(1, 6), name="Custom Status", id="custom", emoji=_o(name=r.choice(["🔥", "😴", "🎮", "💻"])) if r.random() < 0.5 else None, created_at=self.ms)
        if x < 0.55:
            return _o(
                type=2, timestamps=_o(start=self.ms - 60000, end=self.ms + 150000), sync_id="%022x" % r.getrandbits(88),
                state=self.name().capitalize() + "; " + self.name().capitalize(), session_id=self.hash32(),
                party=_o(id="spotify:" + self.old_snowflake()), name="Spotify", id="spotify:1", flags=48,
                details=self.text(1, 5), created_at=self.ms,
                assets=_o(large_text=self.text(1, 4), large_image="spotify:ab67616d0000b273" + "%040x" % r.getrandbits(160)),
            )
        game, app = r.choice(_GAMES)
        a = dict(type=0, timestamps=_o(start=self.ms - r.randint(0, 10**7)), name=game, id=("%016x" % r.getrandbits(64)), created_at=self.ms, application_id=app)
        if r.random() < 0.5:
            a.update(state=self.text(1, 5), details=self.text(1, 6), assets=_o(large_image=self.old_snowflake(), large_text=game, small_image=self.old_snowflake(), small_text=self.text(1, 3)))
        return _o(**a)

    def presence(self, user: dict, guild_id: Optional[str]) -> dict:
        r = self.r
        status = r.choice(_STATUSES[:-1])
        p = dict(
            user=_o(id=user["id"]),
            status=status,
            client_status={r.choice(_PLATFORMS): status},
            activities=[self.activity() for _ in range(r.choice((0, 0, 1, 1, 1, 2)))],
        )
        if guild_id is not None:
            p["guild_id"] = guild_id
        else:
            p["broadcast"] = None
        return _o(**p)

    # -- guilds -------------------------------------------------------------

    def guild(self, n_members: int) -> dict:
        """A GUILD_CREATE ``d``; the guild is remembered for later events."""
        r = self.r
        gid = self.old_snowflake()
        n_roles = min(3 + n_members // 40, 250)
        roles = [self.role(i) for i in range(n_roles)]
        roles[0]["name"] = "@everyone"
        role_ids = [x["id"] for x in roles[1:]]
        n_cats = min(1 + n_members // 200, 40)
        channels = []
        for ci in range(n_cats):
            cat = self.channel(4, ci, None)
            channels.append(cat)
            for pos in range(r.randint(2, 3 + min(n_members // 100, 12))):
                channels.append(self.channel(r.choice((0, 0, 0, 2, 5, 15)), pos, cat["id"]))
        text_ids = [c["id"] for c in channels if c["type"] == 0] or [channels[-1]["id"]]
        info = {"id": gid, "role_ids": role_ids, "text_ids": text_ids}
        member_users = self.r.sample(self.users, min(n_members, len(self.users)))
        while len(member_users) < n_members:  # bigger than the population: fresh users
            member_users.append(self._user())
        members = [self.member(u, info) for u in member_users]
        online = [u for u in member_users if r.random() < 0.55]
        presences = [self.presence(u, None) for u in online]
        threads = []
        for _ in range(min(n_members // 60, 120)):
            ts = self.iso(self.ms - r.randint(10**6, 10**9))
            threads.append(_o(
                type=11, total_message_sent=r.randint(1, 500), thread_metadata=_o(locked=False, create_timestamp=ts, auto_archive_duration=r.choice((60, 1440, 4320, 10080)), archived=False, archive_timestamp=ts),
                rate_limit_per_user=0, parent_id=r.choice(text_ids), owner_id=r.choice(member_users)["id"], name=self.text(2, 6), message_count=r.randint(1, 500),
                member_count=r.randint(1, 50), last_message_id=self.snowflake(), id=self.old_snowflake(), guild_id=gid, flags=0,
            ))
        voice_states = [
            _o(user_id=u["id"], suppress=False, session_id=self.hash32(), self_video=False, self_mute=r.random() < 0.3, self_deaf=False,
               request_to_speak_timestamp=None, mute=False, deaf=False, channel_id=r.choice(text_ids))
            for u in member_users[: min(n_members // 100, 60)]
        ]
        values = dict(
            mfa_level=r.choice((0, 1)), nsfw=False, voice_states=voice_states, region="deprecated", premium_tier=r.choice((0, 1, 2, 3)),
            emojis=[self.emoji() for _ in range(min(n_members // 8, 250))],
            stickers=[_o(version=self.ms, type=2, tags="smile", name=self.name(), id=self.old_snowflake(), guild_id=gid, format_type=1, description=self.text(2, 6), available=True, asset="") for _ in range(min(n_members // 200, 30))],
            members=members, explicit_content_filter=2, max_video_channel_users=25, banner=self.hash32() if n_members > 500 else None, splash=None, application_id=None,
            nsfw_level=0, large=n_members > 250, application_command_counts={"1": r.randint(0, 40)}, channels=channels, default_message_notifications=1,
            afk_timeout=300, premium_progress_bar_enabled=False, max_stage_video_channel_users=50, stage_instances=[], id=gid, max_members=500000,
            hub_type=None, presences=presences, joined_at=self.iso(self.ms - r.randint(10**8, 10**10)), preferred_locale=r.choice(_LOCALES),
            icon=self.hash32(), threads=threads, embedded_activities=[], member_count=n_members if n_members <= 250 else n_members * r.randint(2, 6),
            premium_subscription_count=r.randint(0, 40), public_updates_channel_id=None, description=self.text(4, 20) if r.random() < 0.5 else None,
            lazy=True, guild_scheduled_events=[], owner_id=member_users[0]["id"], unavailable=False, roles=roles,
            guild_hashes=_o(version=1, roles=_o(omitted=False, hash="OEm7dQ"), metadata=_o(omitted=False, hash="cTPdow"), channels=_o(omitted=False, hash="3gEU3w")),
            afk_channel_id=None, verification_level=r.choice((0, 1, 2, 3)), vanity_url_code=None, name=self.text(1, 3).title(), discovery_splash=None,
            system_channel_flags=0, system_channel_id=text_ids[0], rules_channel_id=None,
            features=r.sample(["COMMUNITY", "NEWS", "INVITE_SPLASH", "ANIMATED_ICON", "AUTO_MODERATION", "ROLE_ICONS", "BANNER", "VANITY_URL"], r.randint(0, 6)),
            soundboard_sounds=[], activity_instances=[], incidents_data=None, version=self.ms, safety_alerts_channel_id=None,
            latest_onboarding_question_id=None, inventory_settings=None, home_header=None, profile=None, owner_configured_content_level=0,
            moderator_reporting=None, premium_progress_bar_enabled_user_updated_at=None, premium_features=None,
        )
        info["users"] = member_users
        self.guilds.append(info)
        return {k: values[k] for k in GUILD_KEY_ORDER}

    # -- events -------------------------------------------------------------

    def _ctx(self) -> tuple[dict, dict, str]:
        g = self.r.choice(self.guilds)
        users = g["users"]
        n = len(users)
        u = users[min(int(self.r.paretovariate(1.1)) - 1, n - 1)] if self.r.random() < 0.6 else self.r.choice(users)
        return g, u, self.r.choice(g["text_ids"])

    def message_create(self) -> dict:
        r = self.r
        g, u, ch = self._ctx()
        x = r.random()
        content = self.text(1, 12) if x < 0.7 else self.text(12, 60) if x < 0.95 else self.text(150, 330)[:2000]
        mentions = []
        if r.random() < 0.12:
            mu = r.choice(g["users"])
            mentions.append(_o(**mu, member=self.member(mu, g, with_user=False)))
        embeds: list = []
        attachments: list = []
        if r.random() < 0.08:
            embeds.append(_o(type="rich" if r.random() < 0.3 else "link", url="https://example.com/" + self.name(), title=self.text(3, 10), description=self.text(10, 40),
                             thumbnail=_o(url="https://example.com/i/" + self.hash32() + ".png", proxy_url="https://images-ext-1.discordapp.net/external/" + self.hash32(), width=400, height=300, flags=0, content_type="image/png", placeholder="2gcKDIT3h3iG", placeholder_version=1),
                             content_scan_version=2, color=r.getrandbits(24)))
        if r.random() < 0.06:
            aid = self.snowflake()
            fname = self.name() + r.choice((".png", ".jpg", ".txt", ".mp4"))
            attachments.append(_o(width=1280, height=720, url=f"https://cdn.discordapp.com/attachments/{ch}/{aid}/{fname}?ex=69a1&is=699f&hm={self.hash32()}&",
                                  size=r.randint(10**3, 10**7), proxy_url=f"https://media.discordapp.net/attachments/{ch}/{aid}/{fname}", placeholder_version=1,
                                  placeholder="3ZcGDQJ5d4h3iHeFh2Z4h4Z3", id=aid, filename=fname, content_type="image/png", content_scan_version=2))
        msg = dict(
            type=0, tts=False, timestamp=self.iso(), pinned=False, nonce=str(r.getrandbits(60)) if r.random() < 0.8 else None,
            mentions=mentions, mention_roles=[], mention_everyone=False, member=self.member(u, g, with_user=False),
            id=self.snowflake(), flags=0, embeds=embeds, edited_timestamp=None, content=content, components=[], channel_type=0,
            channel_id=ch, author=u, attachments=attachments, guild_id=g["id"],
        )
        if r.random() < 0.1:  # a reply carries the message it answers
            ref_u = r.choice(g["users"])
            ref_id = self.old_snowflake()
            msg["type"] = 19
            msg["message_reference"] = _o(type=0, message_id=ref_id, guild_id=g["id"], channel_id=ch)
            msg["referenced_message"] = _o(type=0, tts=False, timestamp=self.iso(self.ms - 60000), pinned=False, mentions=[], mention_roles=[], mention_everyone=False,
                                           id=ref_id, flags=0, embeds=[], edited_timestamp=None, content=self.text(1, 20), components=[], channel_id=ch,
                                           author=ref_u, attachments=[])
        return _o(**msg)

    def presence_update(self) -> dict:
        g, u, _ = self._ctx()
        return self.presence(u, g["id"])

    def typing_start(self) -> dict:
        g, u, ch = self._ctx()
        return _o(user_id=u["id"], timestamp=self.ms // 1000, member=self.member(u, g), channel_id=ch, guild_id=g["id"])

    def reaction_add(self) -> dict:
        r = self.r
        g, u, ch = self._ctx()
        emoji = _o(name=r.choice(_UNICODE_BITS[6:]), id=None) if r.random() < 0.7 else _o(name=self.name().capitalize(), id=self.old_snowflake(), animated=r.random() < 0.2)
        return _o(user_id=u["id"], type=0, message_id=self.old_snowflake(), message_author_id=r.choice(g["users"])["id"], member=self.member(u, g), guild_id=g["id"],
                  emoji=emoji, channel_id=ch, burst=False)

    def member_update(self) -> dict:
        g, u, _ = self._ctx()
        m = self.member(u, g)
        return _o(**m, guild_id=g["id"], unusual_dm_activity_until=None, collectibles=None, display_name_styles=None)

    def ready(self, guild_ids: list[str]) -> dict:
        me = self.users[0]
        trace = '["gateway-prd-us-east1-c-36bg",{"micros":96353,"calls":["id_created",{"micros":1089,"calls":[]},"session_lookup_time",{"micros":284,"calls":[]},"discord-sessions-prd-2-116",{"micros":94686,"calls":["start_session",{"micros":46202,"calls":[]},"guilds_connect",{"micros":1,"calls":[]}]}]}]'
        return dict(
            v=10, user_settings={},
            user=_o(verified=True, username=me["username"], primary_guild=None, mfa_enabled=True, id=me["id"], global_name=None, flags=0, email=None, discriminator="0861", clan=None, bot=True, avatar=None),
            shard=[0, 1], session_type="normal", session_id=self.hash32(), resume_gateway_url="wss://gateway-us-east1-c.discord.gg",
            relationships=[], private_channels=[], presences=[], guilds=[_o(unavailable=True, id=g) for g in guild_ids], guild_join_requests=[],
            geo_ordered_rtc_regions=["milan", "rotterdam", "madrid", "bucharest", "stockholm"],
            application=_o(id=me["id"], flags=565248), _trace=[trace],
        )

    # -- envelopes ------------------------------------------------------------

    def dispatch(self, t: str, d: Any) -> bytes:
        self.seq += 1
        return b'{"t":"%s","s":%d,"op":0,"d":%s}' % (t.encode(), self.seq, orjson.dumps(d))


_HELLO = b'{"t":null,"s":null,"op":10,"d":{"heartbeat_interval":41250,"_trace":["[\\"gateway-prd-us-east1-c-36bg\\",{\\"micros\\":0.0}]"]}}'
_ACK = b'{"t":null,"s":null,"op":11,"d":null}'

_EVENTS: dict[str, tuple[str, Callable[[_World], dict]]] = {
    "MESSAGE_CREATE": ("MESSAGE_CREATE", _World.message_create),
    "PRESENCE_UPDATE": ("PRESENCE_UPDATE", _World.presence_update),
    "TYPING_START": ("TYPING_START", _World.typing_start),
    "MESSAGE_REACTION_ADD": ("MESSAGE_REACTION_ADD", _World.reaction_add),
    "GUILD_MEMBER_UPDATE": ("GUILD_MEMBER_UPDATE", _World.member_update),
}


def _events(w: _World, n: int, weights: dict[str, float], ack_every: int = 45) -> list[bytes]:
    names = list(weights)
    cum = list(weights.values())
    out = []
    for i in range(n):
        w.tick()
        if ack_every and i % ack_every == ack_every - 1:
            out.append(_ACK)
            continue
        t = w.r.choices(names, cum)[0]
        out.append(w.dispatch(t, _EVENTS[t][1](w)))
    return out


def _startup(w: _World, member_counts: list[int]) -> list[bytes]:
    guilds = [w.guild(n) for n in member_counts]
    out = [_HELLO, w.dispatch("READY", w.ready([g["id"] for g in guilds]))]
    out.extend(w.dispatch("GUILD_CREATE", g) for g in guilds)
    return out


_REALISTIC_WEIGHTS = {"MESSAGE_CREATE": 40, "PRESENCE_UPDATE": 25, "TYPING_START": 22, "MESSAGE_REACTION_ADD": 7, "GUILD_MEMBER_UPDATE": 6}
# 75 % PRESENCE_UPDATE of all payloads, HEARTBEAT_ACKs included in the other 25 %
_PRESENCE_WEIGHTS = {"PRESENCE_UPDATE": 76.7, "MESSAGE_CREATE": 12, "TYPING_START": 7, "MESSAGE_REACTION_ADD": 2.3, "GUILD_MEMBER_UPDATE": 2}
_HUGE_MEMBERS = 9000


def _gen_realistic() -> list[bytes]:
    w = _World(SEED)
    r = random.Random(SEED + 1)
    # 16 guilds from tiny to ~1 MB, log-uniform; two more joined later
    counts = sorted(int(10 ** r.uniform(0.7, 3.3)) for _ in range(16))
    out = _startup(w, counts)
    out += _events(w, 2000, _REALISTIC_WEIGHTS)
    out.append(w.dispatch("GUILD_CREATE", w.guild(400)))
    out += _events(w, 2000, _REALISTIC_WEIGHTS)
    out.append(w.dispatch("GUILD_CREATE", w.guild(40)))
    out += _events(w, 500, _REALISTIC_WEIGHTS)
    return out


def _gen_presence_heavy() -> list[bytes]:
    w = _World(SEED + 2)
    out = _startup(w, [])
    # no GUILD_CREATE in this stream: the guilds exist only as event context
    for n in (50, 300, 1200, 4000):
        w.guild(n)
    out += _events(w, 5000, _PRESENCE_WEIGHTS, ack_every=40)
    return out


def _gen_huge() -> list[bytes]:
    w = _World(SEED + 3, n_users=200)
    return [_HELLO, w.dispatch("GUILD_CREATE", w.guild(_HUGE_MEMBERS))]


def _gen_huge_tail() -> list[bytes]:
    w = _World(SEED + 3, n_users=200)
    out = [_HELLO, w.dispatch("GUILD_CREATE", w.guild(_HUGE_MEMBERS))]
    out += _events(w, 200, _REALISTIC_WEIGHTS)
    return out


def _gen_ack_storm() -> list[bytes]:
    return [_HELLO] + [_ACK] * 20000


MIXES: dict[str, Callable[[], list[bytes]]] = {
    "realistic": _gen_realistic,
    "presence-heavy": _gen_presence_heavy,
    "huge": _gen_huge,
    "ack-storm": _gen_ack_storm,
    "huge-tail": _gen_huge_tail,
}

_PAYLOADS: dict[str, list[bytes]] = {}
_RECORDED: dict[tuple[str, str], list[bytes]] = {}


def payloads(mix: str) -> list[bytes]:
    """The decompressed payloads of ``mix`` (cached)."""
    try:
        return _PAYLOADS[mix]
    except KeyError:
        pass
    data = _PAYLOADS[mix] = MIXES[mix]()
    return data


def _record(mix: str, kind: str, fn: Callable[[list[bytes]], list[bytes]]) -> list[bytes]:
    key = (mix, kind)
    try:
        return _RECORDED[key]
    except KeyError:
        data = _RECORDED[key] = fn(payloads(mix))
        return data


def _zlib(ps: list[bytes]) -> list[bytes]:
    c = zlib.compressobj()
    return [c.compress(p) + c.flush(zlib.Z_SYNC_FLUSH) for p in ps]


def _zstd_open(ps: list[bytes]) -> list[bytes]:
    c = ZstdCompressor()
    return [c.compress(p, ZstdCompressor.FLUSH_BLOCK) for p in ps]


def _zstd_closed(ps: list[bytes]) -> list[bytes]:
    c = ZstdCompressor()
    return [c.compress(p, ZstdCompressor.FLUSH_FRAME) for p in ps]


def zlib_stream(mix: str) -> list[bytes]:
    """zlib-stream messages: one compressobj, Z_SYNC_FLUSH (00 00 ff ff) per payload."""
    return _record(mix, "zlib", _zlib)


def zstd_stream(mix: str) -> list[bytes]:
    """zstd-stream messages as Discord sends them: one open frame, a flushed block per payload."""
    return _record(mix, "zstd", _zstd_open)


def zstd_frames(mix: str) -> list[bytes]:
    """zstd-stream messages as Spacebar sends them: one closed frame per payload."""
    return _record(mix, "zstd-frames", _zstd_closed)


_KINDS = {"zlib": zlib_stream, "zstd": zstd_stream, "zstd-frames": zstd_frames, "none": payloads}


def messages(mix: str, kind: str) -> list[bytes]:
    """Websocket messages of ``mix`` for ``kind`` in "zlib", "zstd", "zstd-frames", "none"."""
    return _KINDS[kind](mix)


def expected_last_seq(mix: str) -> Optional[int]:
    """The ``s`` of the last dispatch of ``mix`` (what a decoder's ``seq`` must end at)."""
    for p in reversed(payloads(mix)):
        if p.startswith(b'{"t":"'):
            return int(p[p.index(b'"s":') + 4 : p.index(b',"op"')])
    return None


def stats(mix: str) -> dict:
    """Counts and sizes of ``mix``, for the report."""
    ps = payloads(mix)
    counts: dict[str, int] = {}
    for p in ps:
        t = p[6 : p.index(b'"', 6)].decode() if p.startswith(b'{"t":"') else {10: "HELLO", 11: "HEARTBEAT_ACK"}.get(orjson.loads(p)["op"], "other")
        counts[t] = counts.get(t, 0) + 1
    return {
        "payloads": len(ps),
        "bytes": sum(map(len, ps)),
        "largest": max(map(len, ps)),
        "zlib_bytes": sum(map(len, zlib_stream(mix))),
        "zstd_bytes": sum(map(len, zstd_stream(mix))),
        "zstd_frames_bytes": sum(map(len, zstd_frames(mix))),
        "types": dict(sorted(counts.items(), key=lambda kv: -kv[1])),
    }


if __name__ == "__main__":
    t0 = time.perf_counter()
    for name in MIXES:
        t = time.perf_counter()
        s = stats(name)
        print(f"{name:15s} {s['payloads']:6d} payloads {s['bytes'] / 1e6:8.2f} MB (largest {s['largest'] / 1e6:.2f} MB) "
              f"zlib {s['zlib_bytes'] / 1e6:.2f} MB zstd {s['zstd_bytes'] / 1e6:.2f} MB frames {s['zstd_frames_bytes'] / 1e6:.2f} MB "
              f"[{time.perf_counter() - t:.2f}s]")
        print("   ", s["types"])
    print(f"total {time.perf_counter() - t0:.2f}s")
