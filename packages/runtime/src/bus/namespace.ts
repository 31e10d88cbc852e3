// A namespace on a bus: topic names and consumer groups get a prefix, so several meshes (a
// staging and a load-test mesh, or the test suite's clusters) can share one Kafka without
// consuming each other's events. Handlers see the plain topic names.
import type { Bus } from "./port.js";

export function namespaced(bus: Bus, namespace: string): Bus {
  if (namespace === "") return bus;
  const name = (topic: string) => `${namespace}${topic}`;
  return {
    driver: bus.driver,
    ensureTopics: (specs) => bus.ensureTopics(specs.map((s) => ({ ...s, name: name(s.name) }))),
    publish: (topic, records) => bus.publish(name(topic), records),
    subscribe: async (opts) => {
      const sub = await bus.subscribe({
        ...opts,
        groupId: name(opts.groupId),
        topics: opts.topics.map(name),
        handle: (records) => opts.handle(records.map((r) => ({ ...r, topic: r.topic.slice(namespace.length) }))),
      });
      return {
        status: async () => (await sub.status()).map((p) => ({ ...p, topic: p.topic.slice(namespace.length) })),
        stop: () => sub.stop(),
      };
    },
    health: () => bus.health(),
    close: () => bus.close(),
  };
}
