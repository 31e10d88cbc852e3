// Sends to the message store in AppendMany calls: what the edge does with its clients' sends, and
// what a message-store replica does with appends whose conversation another replica writes.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ConnectError, type Client } from "@connectrpc/connect";
import type { AppendResponse, MessageStoreService, TracedAppendSchema } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import { retryLater } from "./errors.js";
import { TickBatcher, wireBytesAtMost } from "./serial.js";

export type TracedAppendInit = MessageInitShape<typeof TracedAppendSchema>;

export interface AppendManyOptions {
  /** Appends per call at most. */
  maxPerCall: number;
  /** Calls in flight at once at most (see TickBatcher). */
  callsInFlight: number;
  /** Appends waiting for a call at most; past it one is refused at once with a retry hint. */
  maxWaiting: number;
  /** Request headers of every call. */
  headers?: Record<string, string>;
}

/** The largest request the message store reads (its server's read limit, for AppendMany above all). */
export const MESSAGE_STORE_READ_MAX_BYTES = 1024 * 1024;
/**
 * Bytes of appends one AppendMany call carries at most, as `appendBytes` counts them: under the
 * store's read limit with room for the envelope (a text at the size limit, 100,000 characters, goes
 * alone or with small ones).
 */
const MAX_CALL_BYTES = (MESSAGE_STORE_READ_MAX_BYTES * 3) / 4;
/** An append's size, at most. */
const appendBytes = (a: TracedAppendInit): number => wireBytesAtMost(a.append?.content?.case === "text" ? a.append.content.value : undefined);

/**
 * The appends that arrive in one turn of the event loop go in one AppendMany call (up to
 * `maxPerCall` and MAX_CALL_BYTES), each answered on its own: a refusal keeps its code and retry hint.
 */
export function appendManyBatcher(messageStore: Client<typeof MessageStoreService>, opts: AppendManyOptions): TickBatcher<TracedAppendInit, AppendResponse> {
  const callOptions = opts.headers === undefined ? {} : { headers: opts.headers };
  return new TickBatcher<TracedAppendInit, AppendResponse>(
    async (items) => {
      const r = await messageStore.appendMany({ appends: items }, callOptions);
      return items.map((_, i) => {
        const o = r.outcomes[i]?.outcome;
        if (o?.case === "appended") return o.value;
        if (o?.case === "error") return o.value.retryAfterMs > 0 ? retryLater(o.value.code, o.value.message, o.value.retryAfterMs) : new ConnectError(o.value.message, o.value.code);
        return new Error("the message store answered an AppendMany without this append's outcome");
      });
    },
    opts.maxPerCall,
    opts.callsInFlight,
    opts.maxWaiting,
    { weight: appendBytes, max: MAX_CALL_BYTES },
  );
}
