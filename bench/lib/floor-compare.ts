/**
 * Each targeted figure next to what the floor relay (scenario 12) did for the same measurement in the same
 * run: a target the floor itself misses is beyond what this machine allows any broker, not a fault of the
 * broker alone.
 */
import { fmtNumber } from './stats.js'
import type { ScenarioResult, Target } from './types.js'

export const FLOOR_SCENARIO = 12

/** Targeted figure (scenario, name pattern) → the floor's figure measuring the same thing. */
const PAIRS: { scenario: number; figure: RegExp; floor: RegExp }[] = [
  { scenario: 1, figure: /^1000\/s p99$/, floor: /^1000\/s p99$/ },
  {
    scenario: 2,
    figure: /^fan-out 10: SETs delivered\+verified$/,
    floor: /^fan-out 10: SETs delivered\+verified$/,
  },
  {
    scenario: 3,
    figure: /^last SET, warm median/,
    floor: /^one event to \d+ sinks: last SET, warm median/,
  },
  // A cascade delivers as one event to 1,000 streams does: one SET each, from one request.
  {
    scenario: 4,
    figure: /^1 stream per agent: last agent SET, warm median/,
    floor: /^one event to \d+ sinks: last SET, warm median/,
  },
  {
    scenario: 8,
    figure: /^revocations \(other users\), p99$/,
    floor: /^priority: revocations \(other users\), p99$/,
  },
  { scenario: 9, figure: /^stream Y latency, p99$/, floor: /^fairness: stream Y latency, p99$/ },
]

export interface FloorComparison {
  scenario: number
  figure: string
  target: string
  value: number
  floor: number
  unit: string
  pass: boolean
  /** Whether the floor relay's figure would meet the same target. */
  floor_meets_target: boolean | null
}

/** Rows for the targeted figures whose scenario and the floor both ran; `httpRate`: the run's POST baseline. */
export function compareWithFloor(results: ScenarioResult[], httpRate: number): FloorComparison[] {
  const floor = results.find((r) => r.id === FLOOR_SCENARIO)
  if (!floor) return []
  const rows: FloorComparison[] = []
  for (const pair of PAIRS) {
    const f = results
      .find((r) => r.id === pair.scenario)
      ?.figures.find((x) => x.target && pair.figure.test(x.name))
    const g = floor.figures.find((x) => pair.floor.test(x.name))
    if (!f?.target || !g) continue
    rows.push({
      scenario: pair.scenario,
      figure: f.name,
      target: f.target.text,
      value: f.value,
      floor: g.value,
      unit: f.unit,
      pass: f.target.pass,
      floor_meets_target: meets(f.target, g.value, httpRate),
    })
  }
  return rows
}

/** Latency targets read "≤ N ms"; rate targets carry the least ratio to the HTTP POST baseline. */
function meets(target: Target, floor: number, httpRate: number): boolean | null {
  if (target.minHttpRatio !== undefined) return floor / httpRate >= target.minHttpRatio
  const max = /≤ ([\d.]+) ms/.exec(target.text)
  return max ? floor <= Number(max[1]) : null
}

export function floorText(rows: FloorComparison[]): string {
  if (rows.length === 0) return ''
  const lines = rows.map(
    (r) =>
      `  ${r.scenario} ${r.figure}: broker ${fmtNumber(r.value, r.unit)}, floor ${fmtNumber(r.floor, r.unit)} (target ${r.target}${r.floor_meets_target === null ? '' : r.floor_meets_target ? '; the floor meets it' : '; the floor misses it too'})`,
  )
  return `Against the floor relay (scenario ${FLOOR_SCENARIO}), same run:\n${lines.join('\n')}\n`
}
