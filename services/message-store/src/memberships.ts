// What the message store knows of memberships: who may read and write a conversation (access
// windows) and who its members are, read from the group service and cached. A membership change
// is learnt from its system message (appended here) or its MembershipChanged event (appended by
// another replica): the conversation's entries are dropped, and later reads wait until the group
// service reflects that change (membership_seq), so a removed member is refused from its removal on.
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import type { Member } from "../../../gen/chat/api/v1/model_pb.js";
import type { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { MembersLoader, readFresh } from "../../../packages/runtime/src/members.js";
import { accessOf, type Access } from "./domain/access.js";

interface Cached<T> {
  value: Promise<T>;
  until: number;
}

interface ConversationEntry {
  /** By user id. */
  access: Map<string, Cached<Access>>;
  /** One entry at most, under "". */
  members: Map<string, Cached<Member[]>>;
}

const MAX_CONVERSATIONS = 50_000;

/** A cached read: a hit until `ttlMs` after loading; a failed load is not kept. */
function cached<T>(map: Map<string, Cached<T>>, key: string, ttlMs: number, load: () => Promise<T>): Promise<T> {
  const hit = map.get(key);
  if (hit !== undefined && hit.until > Date.now()) return hit.value;
  const entry = { value: load(), until: Date.now() + ttlMs };
  map.set(key, entry);
  entry.value.catch(() => map.get(key) === entry && map.delete(key));
  return entry.value;
}

export class MembershipCache {
  /** The highest membership change seen per conversation (with when, to forget old ones). */
  private readonly known = new Map<string, { seq: number; at: number }>();
  private readonly entries = new Map<string, ConversationEntry>();
  /** Each loaded member list's user ids. */
  private readonly idSets = new WeakMap<Member[], Set<string>>();
  private readonly memberLists: MembersLoader;

  constructor(
    private readonly group: Client<typeof GroupService>,
    private readonly ttlMs: number,
  ) {
    this.memberLists = new MembersLoader(group);
  }

  /** The user's access; NotFound (thrown) when the conversation does not exist. */
  access(conversationId: string, userId: string): Promise<Access> {
    const entry = this.entry(conversationId);
    return cached(entry.access, userId, this.ttlMs, () => this.lookupAccess(conversationId, userId));
  }

  /**
   * What a Sync needs in one group call: the user's access to these conversations (cached ones
   * from the cache) and the user's current large conversations (at least `minMembers` members),
   * whose inbox entries lag. A conversation left out is one the user cannot read.
   */
  async forSync(userId: string, conversationIds: string[], minMembers: number): Promise<{ access: Map<string, Access>; large: string[] }> {
    const access = new Map<string, Access>();
    const missing: string[] = [];
    for (const id of conversationIds) {
      const hit = this.entries.get(id)?.access.get(userId);
      if (hit !== undefined && hit.until > Date.now()) access.set(id, await hit.value);
      else missing.push(id);
    }
    const r = await this.group.getUserMemberships({ userId, conversationIds: missing, minMemberCount: minMembers });
    const large: string[] = [];
    const stale: string[] = [];
    for (const m of r.memberships) {
      const id = m.conversation?.conversationId ?? "";
      if (Number(m.conversation?.membershipSeq ?? 0n) < this.knownSeq(id)) {
        stale.push(id); // a change seen here that the group service has not applied yet: read it the careful way
        continue;
      }
      const a = accessOf(m.membership);
      access.set(id, a);
      this.entry(id).access.set(userId, { value: Promise.resolve(a), until: Date.now() + this.ttlMs });
      if (minMembers > 0 && m.membership?.member === true && (m.conversation?.memberCount ?? 0) >= minMembers) large.push(id);
    }
    for (const id of stale) access.set(id, await this.access(id, userId));
    return { access, large };
  }

  /** The current members. */
  members(conversationId: string): Promise<Member[]> {
    const entry = this.entry(conversationId);
    return cached(entry.members, "", this.ttlMs, async () => (await this.memberLists.load(conversationId, this.knownSeq(conversationId))).members);
  }

  /** The current members' user ids (the member list's, kept with it). */
  async memberIds(conversationId: string): Promise<ReadonlySet<string>> {
    const members = await this.members(conversationId);
    let ids = this.idSets.get(members);
    if (ids === undefined) {
      ids = new Set(members.map((m) => m.userId));
      this.idSets.set(members, ids);
    }
    return ids;
  }

  /**
   * Whether the user is a member now, from the member list (cached, and loaded anyway for the
   * inboxes): one group call per conversation rather than one per sender. False for anyone else,
   * whom access() then tells apart (a former member, a stranger, an unknown conversation).
   */
  async isMember(conversationId: string, userId: string): Promise<boolean> {
    return (await this.memberIds(conversationId)).has(userId);
  }

  /** A membership change of the conversation (its system message's seq; 0 for a deletion). */
  changed(conversationId: string, seq: number): void {
    const now = Date.now();
    if (seq > this.knownSeq(conversationId)) this.known.set(conversationId, { seq, at: now });
    this.entries.delete(conversationId);
    if (this.known.size > MAX_CONVERSATIONS) for (const [id, k] of this.known) if (now - k.at > 60_000) this.known.delete(id);
  }

  private knownSeq(conversationId: string): number {
    return this.known.get(conversationId)?.seq ?? 0;
  }

  private entry(conversationId: string): ConversationEntry {
    let entry = this.entries.get(conversationId);
    if (entry === undefined) {
      if (this.entries.size >= MAX_CONVERSATIONS) this.entries.clear();
      entry = { access: new Map(), members: new Map() };
      this.entries.set(conversationId, entry);
    }
    return entry;
  }

  private async lookupAccess(conversationId: string, userId: string): Promise<Access> {
    const atLeast = this.knownSeq(conversationId);
    try {
      const r = await readFresh(
        async () => {
          const m = await this.group.getMembership({ conversationId, userId });
          return { membership: m.membership, membershipSeq: m.conversation?.membershipSeq ?? 0n };
        },
        atLeast,
        `membership of ${userId} in ${conversationId}`,
      );
      return accessOf(r.membership);
    } catch (err) {
      if (!(err instanceof ConnectError) || err.code !== Code.NotFound) throw err;
      // Never a member; throws NotFound for an unknown conversation.
      await readFresh(async () => ({ membershipSeq: (await this.group.getConversation({ conversationId })).conversation?.membershipSeq ?? 0n }), atLeast, `conversation ${conversationId}`);
      return { kind: "none" };
    }
  }
}
