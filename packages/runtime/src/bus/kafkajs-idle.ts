// A fix for kafkajs 2.2.4 (its last release), applied once when the kafka driver loads: every
// connection's request queue re-armed a timer to re-check its pending requests even when none were
// pending, with a negative delay (Node runs it after 1 ms), so each connection that had ever had an
// answer woke its process about a thousand times a second for nothing
// (https://github.com/tulios/kafkajs/issues/1556, #1704; the fix proposed there, #1667, was never
// released). Measured here: an idle service with a producer and a consumer used 3-4% of a core and
// ~850 wake-ups a second; a busy one spent that on top of its work.
//
// The queue needs the timer only while a request waits in `pending` (client-side throttling or the
// in-flight limit); `push` arms it whenever it queues one, and a fulfilled or timed-out request
// re-checks the queue itself. So the replacement below arms it only then, as kafkajs does in that case.
import { createRequire } from "node:module";

/** The part of kafkajs's RequestQueue (src/network/requestQueue/index.js) this fix touches. */
export interface RequestQueueInternals {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: ReturnType<typeof setTimeout> | null;
  checkPendingRequests: (this: RequestQueueInternals) => void;
  scheduleCheckPendingRequests: (this: RequestQueueInternals) => void;
}

/** kafkajs's CHECK_PENDING_REQUESTS_INTERVAL: how soon a queue blocked by its in-flight limit is re-checked. */
const CHECK_PENDING_MS = 10;

function scheduleCheckPendingRequests(this: RequestQueueInternals): void {
  if (this.throttleCheckTimeoutId || this.pending.length === 0) return;
  const throttledFor = this.throttledUntil - Date.now();
  this.throttleCheckTimeoutId = setTimeout(
    () => {
      this.throttleCheckTimeoutId = null;
      this.checkPendingRequests();
    },
    throttledFor > 0 ? throttledFor : CHECK_PENDING_MS,
  );
}

/** kafkajs's RequestQueue class (a CommonJS module without typings: the package has no exports map). */
export const RequestQueue = createRequire(import.meta.url)("kafkajs/src/network/requestQueue/index.js") as {
  prototype: RequestQueueInternals;
  new (options: object): RequestQueueInternals;
};

RequestQueue.prototype.scheduleCheckPendingRequests = scheduleCheckPendingRequests;
