// Reading memberships from the group service: a caller's current membership (the access rule of
// the public API), and member lists no older than a known change. Readers that cache
// members (message store, routing) learn of a change from its system message (seq S) before the
// group service has applied it; a state whose membership_seq is below S is then stale, and they
// read again until it is not.
import type { Client } from "@connectrpc/connect";
import type { Member } from "../../../gen/chat/api/v1/model_pb.js";
import type { GetMembershipResponse, GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { Code, ConnectError, permissionDenied, unavailable } from "./errors.js";

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

/** Every current member of a conversation (paged through ListMembers), as of change `atLeastSeq` or later. */
export function loadMembers(group: Client<typeof GroupService>, conversationId: string, atLeastSeq = 0): Promise<MemberList> {
  return readFresh(
    async () => {
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
    },
    atLeastSeq,
    `members of ${conversationId}`,
  );
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
