/**
 * Child processes of the benchmark (redis-server, the broker, the receiver process). Every child is
 * tracked by pid and stopped by pid: politely first (SIGTERM), then SIGKILL after a grace period. If the
 * benchmark itself exits for any reason, whatever is still alive is SIGKILLed synchronously.
 */
import type { ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'

const children = new Map<number, { child: ChildProcess; name: string }>()
const tempDirs = new Set<string>()

/** A temporary directory removed at exit at the latest. */
export function trackDir(dir: string): string {
  tempDirs.add(dir)
  return dir
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true })
  tempDirs.delete(dir)
}

export function track(child: ChildProcess, name: string): ChildProcess {
  if (child.pid === undefined) throw new Error(`${name} did not start`)
  const pid = child.pid
  children.set(pid, { child, name })
  child.once('exit', () => children.delete(pid))
  return child
}

export function isAlive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

/** Stops one child by its pid: `signal`, then SIGKILL after `graceMs`. Resolves once it has exited. */
export async function stopChild(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  graceMs = 10_000,
): Promise<void> {
  const pid = child.pid
  if (pid === undefined || !isAlive(child)) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  try {
    process.kill(pid, signal)
  } catch {
    return
  }
  let timer: NodeJS.Timeout | undefined
  const killed = await Promise.race([
    exited.then(() => false),
    new Promise<boolean>((r) => (timer = setTimeout(() => r(true), graceMs))),
  ])
  clearTimeout(timer)
  if (killed && isAlive(child)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
    await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))])
  }
}

/** Last resort on exit: SIGKILL every child still alive, by pid, and remove temporary directories. */
export function killAllSync(): void {
  for (const [pid, { child }] of children) {
    if (!isAlive(child)) continue
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  children.clear()
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true })
    } catch {
      // best effort
    }
  }
  tempDirs.clear()
}

export function liveChildren(): string[] {
  return [...children.values()]
    .filter(({ child }) => isAlive(child))
    .map(({ name, child }) => `${name} (pid ${child.pid})`)
}

process.on('exit', killAllSync)
