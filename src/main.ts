#!/usr/bin/env node
/** The `ssf-broker` command: `serve` (the default, so `npm start` runs the broker) or a client command. */
import { runCli } from './cli/commands.js'

async function main(): Promise<void> {
  const result = await runCli(process.argv.slice(2), {
    env: process.env,
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    onInterrupt: (callback) => void process.once('SIGINT', callback),
  })
  if (result === 'serve') {
    const { serve } = await import('./cli/serve.js')
    await serve()
    return
  }
  process.exitCode = result
}

main().catch((err: unknown) => {
  process.stderr.write(`ssf-broker: failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
