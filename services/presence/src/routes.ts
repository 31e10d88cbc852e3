// The RPC surface of the presence service.
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { PresenceService } from "../../../gen/chat/presence/v1/presence_pb.js";

export const services = [PresenceService];

export const routes = (handler: ServiceImpl<typeof PresenceService>) => (router: ConnectRouter) => {
  router.service(PresenceService, handler);
};
