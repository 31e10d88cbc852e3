// Reading memberships from the group service: a caller's current membership (the access rule of
// the public API), and member lists no older than a known change. Readers that cache
// members (message store, routing) learn of a change from its system message (seq S) before the
// group service has applied it; a state whose membership_seq is below S is then stale, and they
// read again until it is not.
import type { Client } from "@connectrpc/connect";
import type { Member } from "../../../gen/chat/api/v1/model_pb.js";
import type { ConversationMembers, GetMembershipResponse, GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { Code, ConnectError, notFound, permissionDenied, unavailable } from "./errors.js";
import { TickBatcher } from "./serial.js";

/** How long a reader waits for the group service to apply a change it has seen. */
const FRESH_WAIT_MS = 5_000;

/** Reads with `read` until its membershipSeq reaches `atLeastSeq` (Unavailable after a few seconds). */
export async function readFresh<T extends { membershipSeq: bigint }>(read: () => Promise<T>, atLeastSeq: number, what: string): Promise<T> {
  const deadline = Date.now() + FRESH_WAIT_MS;
  for (;;) {
    const r = await read();
    if (Number(r.membershipSeq) >= atLeastSeq) return r;
    if (Date.now() > deadline) throw unavailable(`${what}: the group service has not applied membership change ${atLeastSeq} yet`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export interface MemberList {
  members: Member[];
  /** The membership change the list reflects (at least). */
  membershipSeq: bigint;
}

/** Every current member of a conversation, paged through ListMembers (a large group). */
async function pagedMembers(group: Client<typeof GroupService>, conversationId: string): Promise<MemberList> {
  const members: Member[] = [];
  let membershipSeq: bigint | undefined;
  let pageToken = "";
  do {
    const page = await group.listMembers({ conversationId, pageSize: 1024, pageToken });
    members.push(...page.members);
    membershipSeq ??= page.membershipSeq; // the first page's is the lowest: a later page may only be newer
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return { members, membershipSeq: membershipSeq ?? 0n };
}

/** Conversations per ListMembersOfMany call at most (the contract's limit), and such calls in flight at once. */
const MANY_PER_CALL = 256;
const MANY_CALLS_IN_FLIGHT = 2;

/**
 * Member lists read from the group service, the conversations asked for in one turn of the event
 * loop in one ListMembersOfMany call (at most two in flight; those asked for meanwhile go together
 * in the next): a cache filling after a restart, one miss per conversation, costs the group service
 * a call per batch, not one per conversation. A group too large to come whole is paged with
 * ListMembers; an unknown conversation is NotFound, as ListMembers says.
 */
export class MembersLoader {
  private readonly batches: TickBatcher<string, MemberList>;

  constructor(private readonly group: Client<typeof GroupService>) {
    this.batches = new TickBatcher((ids) => this.readMany(ids), MANY_PER_CALL, MANY_CALLS_IN_FLIGHT);
  }

  /** Every current member of a conversation, as of change `atLeastSeq` or later. */
  load(conversationId: string, atLeastSeq = 0): Promise<MemberList> {
    return readFresh(() => this.batches.run(conversationId), atLeastSeq, `members of ${conversationId}`);
  }

  private async readMany(ids: string[]): Promise<(MemberList | Error)[]> {
    const paged = (id: string) => pagedMembers(this.group, id).catch((err: unknown) => ConnectError.from(err));
    let found: Map<string, ConversationMembers>;
    try {
      const r = await this.group.listMembersOfMany({ conversationIds: [...new Set(ids)] });
      found = new Map(r.conversations.map((c) => [c.conversationId, c]));
    } catch (err) {
      // A group service older than ListMembersOfMany (during a rolling upgrade): one list at a time.
      if (ConnectError.from(err).code === Code.Unimplemented) return Promise.all(ids.map(paged));
      throw err;
    }
    return Promise.all(
      ids.map(async (id) => {
        const c = found.get(id);
        if (c === undefined) return notFound(`conversation ${id} not found`);
        return c.complete ? { members: c.members, membershipSeq: c.membershipSeq } : paged(id);
      }),
    );
  }
}

/**
 * The user's current membership of a conversation, with the conversation: NotFound when the
 * conversation does not exist, PermissionDenied when the user is not (or no longer) a member.
 */
export async function currentMembership(group: Client<typeof GroupService>, conversationId: string, userId: string): Promise<Required<Pick<GetMembershipResponse, "membership" | "conversation">>> {
  let r: GetMembershipResponse;
  try {
    r = await group.getMembership({ conversationId, userId });
  } catch (err) {
    if (ConnectError.from(err).code !== Code.NotFound) throw err;
    await group.getConversation({ conversationId }); // NotFound for an unknown conversation
    throw permissionDenied(`not a member of ${conversationId}`);
  }
  if (r.membership?.member !== true || r.conversation === undefined) throw permissionDenied(`not a member of ${conversationId}`);
  return { membership: r.membership, conversation: r.conversation };
}
