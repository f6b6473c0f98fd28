/**
 * CPU time of the processes in a run, to show where the two cores went: the broker, redis-server, the
 * receiver process and the load generator (this process). Linux /proc only; elsewhere the figures are
 * left out.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'

let ticksPerSecond = 100
try {
  ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
} catch {
  // the usual value
}

/** User + system CPU time of a process in ms, or NaN. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may contain spaces) start at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond
  } catch {
    return NaN
  }
}

/** Busy CPU time of the whole machine in ms (all cores, everything but idle and iowait), or NaN. */
export function machineBusyMs(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!
    const v = line.trim().split(/\s+/).slice(1).map(Number)
    const total = v.slice(0, 8).reduce((s, x) => s + x, 0)
    return ((total - v[3]! - v[4]!) * 1000) / ticksPerSecond
  } catch {
    return NaN
  }
}

export interface CpuSnapshot {
  at: number
  ms: Record<string, number>
  pids: Record<string, number>
  machine: number
}

export function snapshot(pids: Record<string, number>): CpuSnapshot {
  const ms: Record<string, number> = {}
  for (const [name, pid] of Object.entries(pids)) ms[name] = cpuMs(pid)
  const self = process.cpuUsage()
  ms['load generator'] = (self.user + self.system) / 1000
  return { at: performance.now(), ms, pids: { ...pids }, machine: machineBusyMs() }
}

/**
 * CPU used between two snapshots: ms per process, and as a share of one core over the wall time.
 * `children`: ms used by processes started and stopped in between (not in either snapshot).
 */
export function cpuBetween(
  a: CpuSnapshot,
  b: CpuSnapshot,
  perUnit?: { count: number; unit: string },
  children: Record<string, number> = {},
): Record<string, unknown> {
  const wall = b.at - a.at
  const out: Record<string, unknown> = { wall_ms: Math.round(wall) }
  let ours = 0
  let restarted = false
  const names = [...Object.keys(b.ms), ...Object.keys(children)]
  for (const name of names) {
    // A process restarted in between (a different pid) cannot be accounted.
    if (!(name in children) && a.pids[name] !== b.pids[name]) {
      restarted = true
      continue
    }
    const used = children[name] ?? b.ms[name]! - (a.ms[name] ?? NaN)
    if (!Number.isFinite(used)) continue
    ours += used
    out[name] = {
      cpu_ms: Math.round(used),
      cores: Number((used / wall).toFixed(2)),
      ...(perUnit && perUnit.count > 0
        ? { [`cpu_us_per_${perUnit.unit}`]: Math.round((used * 1000) / perUnit.count) }
        : {}),
    }
  }
  const machine = b.machine - a.machine
  if (restarted)
    out['other work'] = {
      cores: null,
      note: 'not known: one of our processes was restarted in between',
    }
  else if (Number.isFinite(machine)) {
    // Everything else on the machine (other people's work): the noise these figures carry.
    out['machine busy'] = { cores: Number((machine / wall).toFixed(2)) }
    out['other work'] = { cores: Number((Math.max(0, machine - ours) / wall).toFixed(2)) }
  }
  return out
}
