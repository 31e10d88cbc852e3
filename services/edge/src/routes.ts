// The RPC surfaces of the edge: EdgeService on the internal port; ChatService (the public client
// API) on the public port.
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { ChatService } from "../../../gen/chat/api/v1/api_pb.js";
import { EdgeService } from "../../../gen/chat/edge/v1/edge_pb.js";

export const services = [EdgeService];
export const publicServices = [ChatService];

export const routes = (handler: ServiceImpl<typeof EdgeService>) => (router: ConnectRouter) => {
  router.service(EdgeService, handler);
};

export const publicRoutes = (handler: ServiceImpl<typeof ChatService>) => (router: ConnectRouter) => {
  router.service(ChatService, handler);
};
