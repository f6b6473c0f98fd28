/**
 * A child process whose output can be awaited line by line: `waitFor(/pattern/)` resolves on the first
 * line (past or future) that matches, and fails at once if the process exits first.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'

export interface LoggedChild {
  child: ChildProcess
  /** Everything written to stdout and stderr so far. */
  output(): string
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | string>
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<number | string>
}

export function spawnLogged(
  command: string,
  args: string[],
  options: SpawnOptions = {},
): LoggedChild {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  let text = ''
  const waiters = new Set<() => void>()
  const onData = (chunk: Buffer) => {
    text += chunk.toString()
    for (const wake of waiters) wake()
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  let exitedWith: number | string | undefined
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => {
      exitedWith = code ?? signal ?? -1
      for (const wake of waiters) wake()
      resolve(exitedWith)
    }),
  )

  const waitFor = (pattern: RegExp, timeoutMs = 30_000) =>
    new Promise<string>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer)
        waiters.delete(check)
      }
      const check = () => {
        const line = text.split('\n').find((l) => pattern.test(l))
        if (line !== undefined) {
          done()
          resolve(line)
        } else if (exitedWith !== undefined) {
          done()
          reject(new Error(`exited (${exitedWith}) before printing ${pattern}:\n${text}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`timed out waiting for ${pattern}:\n${text}`))
      }, timeoutMs)
      waiters.add(check)
      check()
    })

  const stop = async (graceMs = 5_000) => {
    if (exitedWith !== undefined) return exitedWith
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs)
    const code = await exited
    clearTimeout(timer)
    return code
  }

  return { child, output: () => text, waitFor, exited, stop }
}
