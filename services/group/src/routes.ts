// The RPC surface of the group service.
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { GroupService } from "../../../gen/chat/group/v1/group_pb.js";

export const services = [GroupService];

export const routes = (handler: ServiceImpl<typeof GroupService>) => (router: ConnectRouter) => {
  router.service(GroupService, handler);
};
