// A load-generator worker of the idle scenario (bench/idle.ts): one process holds up to a few
// tens of thousands of WebSocket clients (a process may hold at most its file-descriptor limit),
// all connected to one edge from several 127.0.0.x source addresses. They answer pings (the `ws`
// client does) and otherwise stay quiet. For the reconnect storm, some of them are dropped, their
// peers send each of them one message, and they all reconnect at once and catch up with Sync.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { DEV_JWT_SECRET } from "../cmd/services.js";
import { mintToken } from "../cmd/token.js";
import { backoffMs } from "../packages/client/src/resilient.js";
import { ChatSocket, FrameError, HandshakeError } from "../packages/client/src/websocket.js";

export type WorkerCommand =
  | { type: "connect"; url: string; from: number; to: number; sources: number; perSecond: number }
  | { type: "storm-prepare"; step: number; count: number }
  | { type: "storm-drop" }
  | { type: "storm-send" }
  | { type: "storm-reconnect" }
  | { type: "stop" };

export type WorkerReport =
  | { type: "connected"; connected: number; failed: number; serverCloses: number; firstError?: string }
  | { type: "prepared"; storm: number }
  | { type: "dropped"; dropped: number }
  | { type: "sent"; sent: number; failed: number }
  | { type: "resumed"; finishedAt: number; resumed: number; failed: number; retries: number; missing: number; duplicates: number; firstError?: string };

const userOf = (i: number) => `idle-${i}`;
const quiet = () => undefined;
/** Connections opened at once. */
const WAVE = 200;
/** Requests of the storm's set-up in flight at once per worker. */
const CALLS = 50;

const sockets = new Map<number, ChatSocket>();
let url = "";
let sources = 1;
/** Storm clients (dropped and reconnected) with the conversation their peer writes in. */
const storm = new Map<number, string>();
/** The seq of the message each dropped client's peer sent while it was away: what its Sync must bring, once. */
const awaited = new Map<number, bigint>();
/** This run's messages are its own (client_msg_id is idempotent, and users and conversations are the same every run). */
const RUN = `${Date.now().toString(36)}-${process.pid}`;
const stormMsgId = (i: number) => `storm-${RUN}-${i}`;

const reply = (report: WorkerReport) => process.send?.(report);

/** Idle clients the server closed (a failed session registration, a missed pong); each connects again. */
let serverCloses = 0;
/** Idle clients waiting to connect again. */
const returning = new Set<number>();
let stopping = false;

/** Connections made per client so far: each one gets a source port of its own (see source()). */
const generation = new Map<number, number>();
const FIRST_PORT = 1_024;
/** Below the kernel's ephemeral range (32768 and up), which the mesh's own connections use. */
const PORTS = 31_000;
/** Clients per source address at most (100,000 over 8 addresses). */
const PER_ADDRESS = 12_600;

/**
 * Client i's source address and port for its next connection: the generator picks the port (the
 * kernel's search for a free one takes milliseconds per socket once tens of thousands are bound,
 * which stalled the workers for seconds), a new one per reconnection so that none is in TIME_WAIT.
 */
function source(i: number): { localAddress: string; localPort: number } {
  const g = generation.get(i) ?? 0;
  generation.set(i, g + 1);
  // 127.0.0.2 and up: nothing listens there, so no port the generator picks is a server's.
  return { localAddress: `127.0.0.${2 + (i % sources)}`, localPort: FIRST_PORT + ((Math.floor(i / sources) + g * PER_ADDRESS) % PORTS) };
}

async function open(i: number): Promise<ChatSocket> {
  const s = await ChatSocket.connect({ url, token: await mintToken({ JWT_HS256_SECRET: DEV_JWT_SECRET }, userOf(i)), deviceId: "bench", ...source(i), onEvent: quiet });
  s.ws.once("close", () => {
    // Still this client's socket, so not dropped on purpose: come back like a real client would.
    if (stopping || sockets.get(i) !== s) return;
    serverCloses++;
    sockets.delete(i);
    void comeBack(i);
  });
  return s;
}

async function comeBack(i: number): Promise<void> {
  returning.add(i);
  let hint = 0;
  for (let attempt = 0; returning.has(i); attempt++) {
    await new Promise((r) => setTimeout(r, Math.max(hint, backoffMs(attempt + 1))));
    try {
      sockets.set(i, await open(i));
      break;
    } catch (err) {
      hint = err instanceof HandshakeError ? err.retryAfterMs : 0; // the edge's Retry-After when it is busy
    }
  }
  returning.delete(i);
}

/** Resolves once no client is on its way back (or after `ms`). */
async function settled(ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (returning.size > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
}

/** `fn` over `items`, `wave` at a time; with `perSecond`, no faster than that. */
async function inWaves<T>(items: T[], fn: (item: T) => Promise<void>, wave = WAVE, perSecond = 0): Promise<void> {
  const start = Date.now();
  for (let k = 0; k < items.length; k += wave) {
    if (perSecond > 0) await new Promise((r) => setTimeout(r, Math.max(0, start + (k / perSecond) * 1000 - Date.now())));
    await Promise.all(items.slice(k, k + wave).map(fn));
  }
}

/** A request retried like a client would (growing, randomised pauses) while the mesh is busy. */
async function retried<T>(fn: () => Promise<T>, attempts = 8): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt + 1 >= attempts) throw err;
      await new Promise((r) => setTimeout(r, backoffMs(attempt + 1)));
    }
  }
}

async function handle(cmd: WorkerCommand): Promise<void> {
  switch (cmd.type) {
    case "connect": {
      url = cmd.url;
      sources = cmd.sources;
      let failed = 0;
      let firstError: string | undefined;
      const indices = Array.from({ length: cmd.to - cmd.from }, (_, k) => cmd.from + k);
      await inWaves(indices, async (i) => {
        try {
          sockets.set(i, await open(i));
        } catch (err) {
          // Turned away (the edge is busy registering others): back later, like a client.
          failed++;
          firstError ??= String(err);
          void comeBack(i);
        }
      }, 20, cmd.perSecond);
      await settled(60_000);
      reply({ type: "connected", connected: sockets.size, failed, serverCloses, ...(firstError === undefined ? {} : { firstError }) });
      return;
    }
    case "storm-prepare": {
      await settled(60_000);
      // Client i (every step-th, up to count overall) is dropped; client i + 1 is its peer.
      const mine = [...sockets.keys()].filter((i) => i % cmd.step === 0 && i / cmd.step < cmd.count && sockets.has(i + 1));
      await inWaves(
        mine,
        async (i) => {
          const r = await retried(async () => sockets.get(i + 1)?.call("getOrCreateDirectConversation", { peerId: userOf(i) }));
          storm.set(i, r?.conversation?.conversationId ?? "");
        },
        CALLS,
      );
      reply({ type: "prepared", storm: storm.size });
      return;
    }
    case "storm-drop": {
      await Promise.all(
        [...storm.keys()].map(async (i) => {
          const s = sockets.get(i);
          sockets.delete(i);
          returning.delete(i);
          if (s === undefined || s.ws.readyState === s.ws.CLOSED) return;
          const closed = new Promise((r) => s.ws.once("close", r));
          s.ws.terminate(); // the connection is cut, not closed politely
          await closed;
        }),
      );
      reply({ type: "dropped", dropped: storm.size });
      return;
    }
    case "storm-send": {
      let sent = 0;
      let failed = 0;
      await inWaves(
        [...storm],
        async ([i, conversationId]) => {
          try {
            const r = await retried(async () => sockets.get(i + 1)?.call("sendMessage", { conversationId, clientMsgId: stormMsgId(i), text: `while ${userOf(i)} was away` }));
            if (r === undefined) throw new Error("the peer's socket is gone");
            awaited.set(i, r.seq);
            sent++;
          } catch {
            failed++;
          }
        },
        CALLS,
      );
      reply({ type: "sent", sent, failed });
      return;
    }
    case "storm-reconnect": {
      // All at once: every dropped client connects again and syncs from the cursor it held. Like a real client, one that is refused (busy, timed out) tries again after a
      // randomised, growing pause, for up to five minutes.
      let resumed = 0;
      let failed = 0;
      let retries = 0;
      let missing = 0;
      let duplicates = 0;
      let firstError: string | undefined;
      const giveUpAt = Date.now() + 300_000;
      await Promise.all(
        [...storm].map(async ([i, conversationId]) => {
          for (let attempt = 0; ; attempt++) {
            try {
              let s = sockets.get(i);
              if (s === undefined) sockets.set(i, (s = await open(i)));
              // From the cursor it held when it was cut off: exactly the message sent meanwhile.
              // (A client whose peer's send failed resumes all the same, with nothing to check.)
              const seq = awaited.get(i);
              const r = await s.call("sync", { cursors: [{ conversationId, seq: seq === undefined ? 0n : seq - 1n }] });
              const got = r.updates.filter((u) => u.conversation?.conversationId === conversationId).flatMap((u) => u.messages).filter((m) => m.seq === seq && m.clientMsgId === stormMsgId(i));
              if (seq !== undefined && got.length === 0) missing++;
              if (got.length > 1) duplicates += got.length - 1;
              resumed++;
              return;
            } catch (err) {
              firstError ??= String(err);
              if (sockets.get(i)?.ws.readyState !== 1) sockets.delete(i);
              if (Date.now() > giveUpAt) {
                failed++;
                return;
              }
              retries++;
              // The server's hint when it gives one (it spreads the returns over the backlog), else a growing, randomised pause.
              const hint = err instanceof FrameError ? err.retryAfterMs : 0;
              await new Promise((r) => setTimeout(r, hint > 0 ? hint : backoffMs(attempt + 1)));
            }
          }
        }),
      );
      reply({ type: "resumed", finishedAt: Date.now(), resumed, failed, retries, missing, duplicates, ...(firstError === undefined ? {} : { firstError }) });
      return;
    }
    case "stop":
      stopping = true;
      await Promise.all([...sockets.values()].map((s) => s.close()));
      process.exit(0);
  }
}

// The bench went away (interrupted): so do its clients.
process.on("disconnect", () => process.exit(0));
// Each step's length and the worker's longest event-loop stall in it, on stderr (the bench's output):
// a stalled worker stops answering pings, and the edges drop its clients.
const stalls = monitorEventLoopDelay({ resolution: 20 });
stalls.enable();
process.on("message", (cmd: WorkerCommand) => {
  const t0 = Date.now();
  stalls.reset();
  handle(cmd).then(() => {
    process.stderr.write(`[idle worker ${process.pid}] ${new Date().toISOString()} ${cmd.type} took ${((Date.now() - t0) / 1000).toFixed(1)} s; longest event-loop stall ${Math.round(stalls.max / 1e6)} ms\n`);
  }, (err: unknown) => {
    process.stderr.write(`idle worker: ${String(err)}\n`);
    process.exit(1);
  });
});
