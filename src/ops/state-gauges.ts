/**
 * Where the shared-state gauges come from: the stream records, outboxes and dead-letter list in Redis.
 * Every broker process computes the same numbers from the same Redis.
 */
import type { StreamStore } from '../streams/store.js'
import type { Outbox } from '../delivery/outbox.js'
import type { StreamRecord } from '../streams/model.js'
import type { StateGaugeProviders } from './metrics.js'

const PAGE = 1000

async function* streamPages(streams: StreamStore): AsyncGenerator<StreamRecord[]> {
  let cursor: string | undefined
  do {
    const page = await streams.list({ limit: PAGE, ...(cursor !== undefined ? { cursor } : {}) })
    yield page.streams
    cursor = page.next_cursor
  } while (cursor !== undefined)
}

export function stateGauges(streams: StreamStore, outbox: Outbox): StateGaugeProviders {
  return {
    async outboxSets() {
      let total = 0
      // One page's counts at once: the commands share a pipeline.
      for await (const page of streamPages(streams))
        for (const n of await Promise.all(page.map((s) => outbox.pending(s.stream_id)))) total += n
      return total
    },
    deadLetters: () => outbox.deadLetterCount(),
    async streamsByStatus() {
      const counts: Record<string, number> = {}
      for await (const page of streamPages(streams))
        for (const stream of page) counts[stream.status] = (counts[stream.status] ?? 0) + 1
      return counts
    },
  }
}
