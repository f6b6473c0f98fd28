/** The results table (terminal and Markdown) and the baseline summary, from scenario results. */
import type { Baselines } from './baselines.js'
import { fmtNumber } from './stats.js'
import type { Figure, RatioSpec, ScenarioResult } from './types.js'

export function ratioText(f: Figure): string {
  return (f.ratios ?? [])
    .map(
      (r) =>
        `${r.value >= 100 ? r.value.toFixed(0) : r.value >= 10 ? r.value.toFixed(1) : r.value.toFixed(2)}× ${r.against}`,
    )
    .join('; ')
}

export function valueText(f: Figure): string {
  return Number.isFinite(f.value) ? fmtNumber(f.value, f.unit) : 'lost'
}

/** CPU other processes on the machine used while the scenario ran: how noisy its figures are. */
function otherWork(r: ScenarioResult): string {
  const cores = (
    r.details.cpu_whole_scenario as { 'other work'?: { cores?: number | null } } | undefined
  )?.['other work']?.cores
  return typeof cores !== 'number' || r.figures.length === 0
    ? ''
    : ` (other work on the machine: ${cores.toFixed(2)} cores)`
}

function rows(results: ScenarioResult[]): string[][] {
  const out: string[][] = []
  for (const r of results) {
    if (r.status !== 'ok' && r.figures.length === 0) {
      out.push([
        String(r.id),
        r.title,
        r.status === 'not_available' ? `not available: ${r.reason}` : `FAILED: ${r.reason}`,
        '',
        '',
        '',
      ])
      continue
    }
    r.figures.forEach((f, i) => {
      const target = f.target ? `${f.target.pass ? 'PASS' : 'MISS'} (${f.target.text})` : ''
      out.push([
        i === 0 ? String(r.id) : '',
        i === 0 ? r.title + otherWork(r) : '',
        f.name + (f.note ? ` [${f.note}]` : ''),
        valueText(f),
        ratioText(f),
        target,
      ])
    })
    if (r.reason) out.push(['', '', r.reason, '', '', ''])
  }
  return out
}

const HEAD = ['#', 'Scenario', 'Figure', 'Value', 'Ratio to baselines', 'Target']

export function terminalTable(results: ScenarioResult[]): string {
  const body = rows(results)
  const widths = HEAD.map((h, i) =>
    Math.min(
      i === 2 ? 60 : i === 4 ? 70 : 48,
      Math.max(h.length, ...body.map((r) => r[i]!.length)),
    ),
  )
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        c.length > widths[i]! ? c.slice(0, widths[i]! - 1) + '…' : c.padEnd(widths[i]!),
      )
      .join(' | ')
  return [line(HEAD), widths.map((w) => '-'.repeat(w)).join('-+-'), ...body.map(line)].join('\n')
}

export function markdownTable(results: ScenarioResult[]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|')
  return [
    `| ${HEAD.join(' | ')} |`,
    `|${HEAD.map(() => '---').join('|')}|`,
    ...rows(results).map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n')
}

export function baselineText(b: Baselines, alg: string): string {
  const runs = b.runs
    .map((r) => `sign ${Math.round(r.sign.ratePerSec)}/s, POST ${Math.round(r.http.ratePerSec)}/s`)
    .join(' | ')
  return [
    `Baselines (median of ${b.runs.length}: ${runs}):`,
    `  sign  ${alg} with src/keys signSet, ${b.runs[0]!.sign.inFlight} in flight, one process: ${fmtNumber(b.signRate, '/s')}; one signature alone: ${fmtNumber(b.signSerialMs, 'ms')}`,
    `  HTTP  undici keep-alive POST of a ${b.runs[0]!.http.bodyBytes}-byte SET, ${b.runs[0]!.http.connections} connections, ${b.runs[0]!.http.inFlight} in flight: ${fmtNumber(b.httpRate, '/s')}; one POST alone: ${fmtNumber(b.httpSerialMs, 'ms')}`,
  ].join('\n')
}

/**
 * The figure builder of a scenario whose figures share one note (for instance a loss found): `ratio`
 * says how each relates to the baselines.
 */
export function figureMaker(
  note: string | undefined,
  ratio: (name: string, unit: Figure['unit']) => RatioSpec,
): (name: string, value: number, unit: Figure['unit'], target?: Figure['target']) => Figure {
  return (name, value, unit, target) => ({
    name,
    value,
    unit,
    ratio: ratio(name, unit),
    ...(target ? { target } : {}),
    ...(note ? { note } : {}),
  })
}
