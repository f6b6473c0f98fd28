/**
 * Metrics with SSF_BROKER_PROCESSES > 1: the processes share one port, so a scrape reaches one of them
 * at random. The one that answers asks the primary, which collects every process's registry (prom-client
 * AggregatorRegistry over cluster IPC) and answers with the machine's totals: counters and histograms
 * summed, shared-state gauges by their `aggregator` (max), readiness by min.
 */
import cluster from 'node:cluster'
import { AggregatorRegistry, type Registry } from 'prom-client'

const REQUEST = 'ssf-broker:metrics-request'
const RESPONSE = 'ssf-broker:metrics-response'
const TIMEOUT_MS = 3000

interface Reply {
  type: typeof RESPONSE
  id: number
  text?: string
  error?: string
}

/** In the primary: answers workers' requests with the aggregated metrics of all of them. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry()
  cluster.on('message', (worker, message: { type?: string; id?: number }) => {
    if (message?.type !== REQUEST || typeof message.id !== 'number') return
    const id = message.id
    aggregator.clusterMetrics().then(
      (text) => worker.isConnected() && worker.send({ type: RESPONSE, id, text } satisfies Reply),
      (err: unknown) =>
        worker.isConnected() &&
        worker.send({ type: RESPONSE, id, error: String(err) } satisfies Reply),
    )
  })
}

/** In a cluster worker: an exposition function that answers for the whole machine; else undefined. */
export function clusterExposition(registry: Registry): (() => Promise<string>) | undefined {
  if (!cluster.isWorker || !process.send) return undefined
  AggregatorRegistry.setRegistries([registry])
  new AggregatorRegistry() // registers this worker's answer to the primary's collection requests
  let next = 0
  const pending = new Map<number, (reply: Reply) => void>()
  process.on('message', (message: Reply) => {
    if (message?.type !== RESPONSE) return
    pending.get(message.id)?.(message)
  })
  return () =>
    new Promise<string>((resolve) => {
      const id = next++
      // Without an answer (primary busy or gone), this process's own metrics are better than none.
      const fallback = () => {
        pending.delete(id)
        resolve(registry.metrics())
      }
      const timer = setTimeout(fallback, TIMEOUT_MS)
      pending.set(id, (reply) => {
        clearTimeout(timer)
        pending.delete(id)
        if (reply.text !== undefined) resolve(reply.text)
        else resolve(registry.metrics())
      })
      process.send!({ type: REQUEST, id })
    })
}
