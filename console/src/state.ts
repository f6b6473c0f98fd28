/**
 * What pages keep for this tab in memory (never the URL or storage): a SET handed to Inspect, and the
 * emitter token given on Emit (forgotten at sign-out).
 */
export const handoff: { set?: string | undefined; emitterToken?: string | undefined } = {}
