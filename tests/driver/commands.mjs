// What every driver here shares: the log line format and the command loop.
// A driver reads one JSON command a line on stdin ({id, op, page, timeout,
// ...}), runs `ops[op](cmd)`, and answers each with one `REPLY {id, ok, ...}`
// line (tests/src/browser.rs reads them); other lines are diagnostics.
import readline from 'node:readline';

export const log = (s) => console.log(`${Date.now()} ${s}`);

// Runs commands until stdin closes. `pageFor(cmd)` is the page a command
// is about (its default timeout becomes `cmd.timeout`, 15 s when absent);
// `diag(page, cmd)` describes it when the command fails.
export async function serveCommands(ops, { pageFor = () => undefined, diag = async () => undefined } = {}) {
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      console.log(`REPLY ${JSON.stringify({ ok: false, error: `bad command: ${e}` })}`);
      continue;
    }
    log(`CMD ${line}`);
    pageFor(cmd)?.setDefaultTimeout(cmd.timeout ?? 15000);
    let reply;
    try {
      const f = ops[cmd.op];
      if (!f) throw new Error(`unknown op ${cmd.op}`);
      reply = { id: cmd.id, ok: true, ...(await f(cmd)) };
    } catch (e) {
      reply = { id: cmd.id, ok: false, error: String(e?.message ?? e) };
      const d = await diag(pageFor(cmd), cmd);
      if (d !== undefined) reply.diag = d;
    }
    console.log(`REPLY ${JSON.stringify(reply)}`);
  }
}
