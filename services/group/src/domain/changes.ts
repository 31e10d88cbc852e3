// The rules of group changes, pure: who may add, remove, rename, change roles and delete, and
// what a change records. The store calls `checkChange` with the group's state while it holds the
// conversation, so the rules and the member cap hold under concurrent changes.
import { ConversationType, Role, SystemEventKind } from "../../../../gen/chat/api/v1/enums_pb.js";
import { failedPrecondition, permissionDenied } from "../../../../packages/runtime/src/errors.js";

/** A change as requested and as recorded (in group_changes and as the system message's event). */
export interface ChangeSpec {
  kind: SystemEventKind;
  actorId: string;
  /** Added or removed members, the member whose role changes; the initial members of CREATED. */
  userIds: string[];
  /** The new title (CREATED, RENAMED). */
  title: string;
  /** The new role (ROLE_CHANGED). */
  role: Role;
}

/** The group as a change sees it. */
export interface GroupState {
  type: ConversationType;
  title: string;
  memberCount: number;
  memberLimit: number;
  /** Roles of the current members among the actor and the users the change names. */
  roles: ReadonlyMap<string, Role>;
}

const isAdmin = (role: Role | undefined) => role === Role.ADMIN || role === Role.OWNER;

/**
 * Checks a change against the group's current state. Returns the change to record (an addition
 * narrowed to users not yet members), or undefined when it changes nothing. Throws
 * PermissionDenied (role rules) or FailedPrecondition (the group's state forbids it).
 */
export function checkChange(state: GroupState, spec: ChangeSpec): ChangeSpec | undefined {
  if (state.type !== ConversationType.GROUP) throw failedPrecondition("a direct conversation has no members to change, title or roles");
  const actorRole = state.roles.get(spec.actorId);
  if (actorRole === undefined) throw permissionDenied(`${spec.actorId} is not a member of this group`);
  const [target = ""] = spec.userIds;
  const targetRole = state.roles.get(target);
  switch (spec.kind) {
    case SystemEventKind.MEMBERS_ADDED: {
      if (!isAdmin(actorRole)) throw permissionDenied("only admins and the owner add members");
      const added = [...new Set(spec.userIds)].filter((u) => !state.roles.has(u));
      if (added.length === 0) return undefined;
      if (state.memberCount + added.length > state.memberLimit) {
        throw failedPrecondition(`the group has ${state.memberCount} members and a limit of ${state.memberLimit}: adding ${added.length} would exceed it`);
      }
      return { ...spec, userIds: added };
    }
    case SystemEventKind.MEMBER_REMOVED: {
      if (target === spec.actorId) return checkChange(state, { ...spec, kind: SystemEventKind.MEMBER_LEFT });
      if (!isAdmin(actorRole)) throw permissionDenied("only admins and the owner remove members");
      if (targetRole === undefined) throw failedPrecondition(`${target} is not a member of this group`);
      if (targetRole === Role.OWNER) throw permissionDenied("nobody removes the owner");
      if (targetRole === Role.ADMIN && actorRole !== Role.OWNER) throw permissionDenied("only the owner removes an admin");
      return { ...spec, userIds: [target] };
    }
    case SystemEventKind.MEMBER_LEFT: {
      if (actorRole === Role.OWNER) throw failedPrecondition("the owner cannot leave: transfer ownership first, or delete the group");
      return { ...spec, userIds: [spec.actorId] };
    }
    case SystemEventKind.RENAMED: {
      if (!isAdmin(actorRole)) throw permissionDenied("only admins and the owner rename the group");
      return spec.title === state.title ? undefined : { ...spec, userIds: [] };
    }
    case SystemEventKind.ROLE_CHANGED: {
      if (actorRole !== Role.OWNER) throw permissionDenied("only the owner changes roles");
      if (targetRole === undefined) throw failedPrecondition(`${target} is not a member of this group`);
      if (target === spec.actorId) throw failedPrecondition("the owner hands ownership to another member instead");
      if (spec.role === targetRole) return undefined;
      return { ...spec, userIds: [target] };
    }
    default:
      throw failedPrecondition(`not a change a caller can ask for: ${SystemEventKind[spec.kind]}`);
  }
}

/** Only the owner deletes a group. */
export function checkDelete(state: GroupState, actorId: string): void {
  if (state.type !== ConversationType.GROUP) throw failedPrecondition("a direct conversation cannot be deleted");
  if (state.roles.get(actorId) !== Role.OWNER) throw permissionDenied("only the owner deletes the group");
}

/** How one applied change moves memberships: joined, left, or a role set (the actor of a transfer becomes admin). */
export function effectsOf(spec: ChangeSpec): { joined: string[]; left: string[]; roles: [string, Role][] } {
  switch (spec.kind) {
    case SystemEventKind.MEMBERS_ADDED:
      return { joined: spec.userIds, left: [], roles: [] };
    case SystemEventKind.MEMBER_REMOVED:
    case SystemEventKind.MEMBER_LEFT:
      return { joined: [], left: spec.userIds, roles: [] };
    case SystemEventKind.ROLE_CHANGED:
      return {
        joined: [],
        left: [],
        roles: spec.userIds.flatMap((u): [string, Role][] => (spec.role === Role.OWNER ? [[u, Role.OWNER], [spec.actorId, Role.ADMIN]] : [[u, spec.role]])),
      };
    default:
      return { joined: [], left: [], roles: [] };
  }
}
