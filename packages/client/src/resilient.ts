// A client that stays connected, for devices and load generators: it asks AssignEdge (through any
// of its bootstrap addresses: edges, or the ingress in front of them) which edge to use, connects
// its WebSocket there, and when the connection drops or the edge asks it to move (draining), it
// connects again wherever AssignEdge says, catches up from its cursors with Sync, watches the same
// users' presence again, and retries unanswered sends with the same client_msg_id. Messages reach
// `onMessage` once each, in seq order per conversation: repeats are dropped and gaps are filled
// from the history before anything after them is handed on.
import { create } from "@bufbuild/protobuf";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { ChatService, type SendMessageResponse } from "../../../gen/chat/api/v1/api_pb.js";
import { Direction } from "../../../gen/chat/api/v1/enums_pb.js";
import type { Event } from "../../../gen/chat/api/v1/events_pb.js";
import { MessageSchema, type Message } from "../../../gen/chat/api/v1/model_pb.js";
import { ChatSocket, FrameError, HandshakeError, type RequestInit, type ResponseOf } from "./websocket.js";

export interface ResilientOptions {
  /** Connect base URLs that answer AssignEdge (any edge, or the ingress); tried in turn. */
  bootstrap: string[];
  token: string;
  deviceId: string;
  protocol?: "chat.v1.proto" | "chat.v1.json";
  /** Source address to connect from (several 127.0.0.x for many clients). */
  localAddress?: string;
  /** Every message of the user's conversations, once, in seq order per conversation. */
  onMessage?: (message: Message) => void;
  /** Every other event (receipts, presence, typing, membership). */
  onEvent?: (event: Event) => void;
  /** Called after each (re)connection, with the edge it reached. */
  onConnected?: (edgeId: string) => void;
}

/** Send errors worth retrying (the message may or may not be stored: the same client_msg_id makes it safe). */
const RETRYABLE = new Set(["unavailable", "resource_exhausted", "deadline_exceeded", "aborted", "internal", "unknown"]);
const SEND_DEADLINE_MS = 60_000;
const HISTORY_PAGE = 500;

type Request = Parameters<ChatSocket["call"]>[0];

/** The user id of a JWT (its `sub`), read without verifying: the server verifies. */
function subjectOf(token: string): string {
  const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { sub?: string };
  return payload.sub ?? "";
}

interface ConversationStream {
  /** Every message up to this seq was handed on. */
  cursor: bigint;
  /** Messages past a gap, waiting for it to be filled. */
  waiting: Map<bigint, Message>;
  filling: boolean;
}

export class ResilientChat {
  readonly userId: string;
  /** How many times the client connected again after the first time. */
  reconnects = 0;
  /** The edge in use: its id and WebSocket URL, as AssignEdge named it. */
  edgeId = "";
  edgeUrl = "";
  private socket: ChatSocket | undefined;
  private connecting: Promise<ChatSocket> | undefined;
  private closed = false;
  private readonly streams = new Map<string, ConversationStream>();
  private readonly watching = new Set<string>();
  private nextBootstrap = 0;
  private readonly assign;

  private constructor(private readonly opts: ResilientOptions) {
    this.userId = subjectOf(opts.token);
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${opts.token}`);
      req.header.set("chat-device-id", opts.deviceId);
      return next(req);
    };
    const clients = opts.bootstrap.map((baseUrl) => createClient(ChatService, createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [auth] })));
    this.assign = async () => {
      for (let i = 0; i < clients.length; i++) {
        const k = (this.nextBootstrap + i) % clients.length;
        try {
          const r = await clients[k]?.assignEdge({}, { timeoutMs: 3_000 });
          if (r === undefined || r.websocketUrl === "") continue;
          this.nextBootstrap = k;
          return r;
        } catch {
          // that address is down: the next one
        }
      }
      return undefined;
    };
  }

  static async connect(opts: ResilientOptions): Promise<ResilientChat> {
    const chat = new ResilientChat(opts);
    await chat.connected();
    return chat;
  }

  /** The seq up to which every message of a conversation was handed on. */
  cursor(conversationId: string): bigint {
    return this.streams.get(conversationId)?.cursor ?? 0n;
  }

  /** The live socket, connecting (again) first when there is none. */
  connected(): Promise<ChatSocket> {
    if (this.socket !== undefined) return Promise.resolve(this.socket);
    this.connecting ??= this.reconnect().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  /** One request on the current connection (answers as ChatSocket.call). */
  async call<K extends Request>(kind: K, value: RequestInit<K>): Promise<ResponseOf<K>> {
    return (await this.connected()).call(kind, value);
  }

  /**
   * Sends a text message, retrying across reconnections with the same client_msg_id until it is
   * stored. `fresh`: the id was made for this call and never sent before; the first try then says
   * so (SendMessageRequest.first_attempt, which saves the store a lookup), the retries do not.
   */
  async send(conversationId: string, clientMsgId: string, text: string, opts: { fresh?: boolean } = {}): Promise<SendMessageResponse> {
    const deadline = Date.now() + SEND_DEADLINE_MS;
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await this.call("sendMessage", { conversationId, clientMsgId, text, firstAttempt: attempt === 0 && opts.fresh === true });
        // The sender's own device gets no event for its message: it is handed on from the answer.
        this.take(create(MessageSchema, { conversationId, messageId: r.messageId, seq: r.seq, clientMsgId, senderId: this.userId, senderDeviceId: this.opts.deviceId, content: { case: "text", value: text }, ...(r.serverTime ? { serverTime: r.serverTime } : {}) }));
        return r;
      } catch (err) {
        const retry = !(err instanceof FrameError) || RETRYABLE.has(err.code);
        if (!retry || this.closed || Date.now() > deadline) throw err;
        await sleep(Math.max(err instanceof FrameError ? err.retryAfterMs : 0, backoffMs(attempt + 1)));
      }
    }
  }

  /** Watches users' presence (again after every reconnection); answers their current presence. */
  async watch(userIds: string[]): Promise<ResponseOf<"watchPresence">> {
    const r = await this.call("watchPresence", { userIds });
    for (const u of userIds) this.watching.add(u);
    return r;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.socket?.close();
  }

  /** Finds an edge, connects, catches up and watches again; retries (with backoff, or the server's hint) until it works or the client is closed. */
  private async reconnect(): Promise<ChatSocket> {
    let hint = 0;
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new Error("client closed");
      if (attempt > 0) await sleep(Math.max(hint, backoffMs(attempt)));
      hint = 0;
      const edge = await this.assign();
      if (edge === undefined) continue;
      let socket: ChatSocket;
      try {
        socket = await ChatSocket.connect({
          url: edge.websocketUrl,
          token: this.opts.token,
          deviceId: this.opts.deviceId,
          ...(this.opts.protocol ? { protocol: this.opts.protocol } : {}),
          ...(this.opts.localAddress ? { localAddress: this.opts.localAddress } : {}),
          onEvent: (event) => this.onEvent(socket, event),
        });
      } catch (err) {
        // Draining or too busy (503, maybe with Retry-After), or gone since AssignEdge answered: ask again.
        if (err instanceof HandshakeError) hint = err.retryAfterMs;
        continue;
      }
      socket.ws.once("close", () => {
        if (this.socket !== socket) return;
        this.socket = undefined;
        if (!this.closed) void this.connected().catch(() => undefined);
      });
      try {
        await this.catchUp(socket);
        if (this.watching.size > 0) await socket.call("watchPresence", { userIds: [...this.watching] });
      } catch (err) {
        if (err instanceof FrameError) hint = err.retryAfterMs;
        await socket.close();
        continue;
      }
      const previous = this.socket;
      this.socket = socket;
      if (this.edgeId !== "") this.reconnects++;
      this.edgeId = edge.edgeId;
      this.edgeUrl = edge.websocketUrl;
      this.opts.onConnected?.(edge.edgeId);
      if (previous !== undefined) void previous.close();
      return socket;
    }
  }

  /** Everything missed since the cursors (Sync), page after page. */
  private async catchUp(socket: ChatSocket): Promise<void> {
    for (;;) {
      const cursors = [...this.streams].map(([conversationId, s]) => ({ conversationId, seq: s.cursor }));
      const r = await socket.call("sync", { cursors });
      let more = r.hasMore;
      for (const update of r.updates) {
        this.takePage(update.conversation?.conversationId ?? update.messages[0]?.conversationId ?? "", update.messages);
        if (update.hasMore) more = true;
      }
      if (!more) return;
    }
  }

  private onEvent(from: ChatSocket, event: Event): void {
    switch (event.kind.case) {
      case "message":
        if (event.kind.value.message !== undefined) this.take(event.kind.value.message);
        return;
      case "reconnect":
        // The edge drains: connect elsewhere first, then let this connection go.
        if (this.socket === from) {
          this.socket = undefined;
          void this.connected().then(
            () => from.close(),
            () => undefined,
          );
        }
        return;
      default:
        this.opts.onEvent?.(event);
    }
  }

  private stream(conversationId: string): ConversationStream {
    let s = this.streams.get(conversationId);
    if (s === undefined) this.streams.set(conversationId, (s = { cursor: 0n, waiting: new Map(), filling: false }));
    return s;
  }

  /** Hands a message on in seq order: repeats dropped, a gap filled from the history first. */
  private take(m: Message): void {
    const s = this.stream(m.conversationId);
    if (m.seq <= s.cursor) return;
    s.waiting.set(m.seq, m);
    this.handOn(s);
    if (s.waiting.size > 0 && !s.filling) void this.fill(m.conversationId, s);
  }

  /**
   * The messages right after the cursor, as the server pages them (Sync, GetHistory after the
   * cursor): nothing the reader may see lies between the cursor and the first of them (a member
   * who joined later sees the history from their join on).
   */
  private takePage(conversationId: string, messages: Message[]): void {
    const s = this.stream(conversationId);
    const first = messages[0];
    if (first !== undefined && first.seq > s.cursor + 1n) s.cursor = first.seq - 1n;
    for (const m of messages) if (m.seq > s.cursor) s.waiting.set(m.seq, m);
    this.handOn(s);
  }

  private handOn(s: ConversationStream): void {
    for (let next = s.waiting.get(s.cursor + 1n); next !== undefined; next = s.waiting.get(s.cursor + 1n)) {
      s.waiting.delete(next.seq);
      s.cursor = next.seq;
      this.opts.onMessage?.(next);
    }
  }

  /** Reads the history after the cursor until the waiting messages follow on. */
  private async fill(conversationId: string, s: ConversationStream): Promise<void> {
    s.filling = true;
    try {
      while (s.waiting.size > 0) {
        const before = s.cursor;
        const page = await this.call("getHistory", { conversationId, anchorSeq: s.cursor, direction: Direction.AFTER, limit: HISTORY_PAGE });
        if (s.cursor === before) this.takePage(conversationId, page.messages);
        else this.handOn(s);
        if (page.messages.length === 0) return;
      }
    } catch {
      // the connection went: the reconnection's Sync fills the gap
    } finally {
      s.filling = false;
    }
  }

  /** The socket in use (tests reach through it to simulate network trouble). */
  get current(): ChatSocket | undefined {
    return this.socket;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The pause before retry `attempt` (1, 2, ...): doubling from 100 ms up to `capMs`, each a random
 * point in its upper half, so clients cut off together do not come back together.
 */
export function backoffMs(attempt: number, capMs = 10_000): number {
  const ceiling = Math.min(capMs, 100 * 2 ** Math.max(0, attempt - 1));
  return ceiling * (0.5 + Math.random() / 2);
}
