// The RPC surface of the connection service.
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { ConnectionService } from "../../../gen/chat/connection/v1/connection_pb.js";

export const services = [ConnectionService];

export const routes = (handler: ServiceImpl<typeof ConnectionService>) => (router: ConnectRouter) => {
  router.service(ConnectionService, handler);
};
