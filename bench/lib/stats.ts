/** Small statistics and formatting helpers. */

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

export function summarize(values: number[]): {
  count: number
  p50: number
  p95: number
  p99: number
  max: number
  mean: number
} {
  const sorted = [...values].sort((a, b) => a - b)
  const mean = sorted.reduce((s, v) => s + v, 0) / (sorted.length || 1)
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? NaN,
    mean,
  }
}

export function median(values: number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  )
}

export const round = (v: number, digits = 2) => (Number.isFinite(v) ? Number(v.toFixed(digits)) : v)

export function fmtNumber(v: number, unit: string): string {
  if (!Number.isFinite(v)) return String(v)
  if (unit === 'ms')
    return v >= 100 ? `${v.toFixed(0)} ms` : v >= 10 ? `${v.toFixed(1)} ms` : `${v.toFixed(2)} ms`
  if (unit === '/s') return `${Math.round(v).toLocaleString('en-US')}/s`
  if (unit === 'B')
    return v >= 1024 * 1024
      ? `${(v / 1024 / 1024).toFixed(1)} MiB`
      : v >= 1024
        ? `${(v / 1024).toFixed(1)} KiB`
        : `${v.toFixed(0)} B`
  if (unit === 'count')
    return v < 100 && !Number.isInteger(v) ? v.toFixed(1) : Math.round(v).toLocaleString('en-US')
  return `${round(v)} ${unit}`
}
