/** What one page hands another within this tab (never the URL): a SET to open in Inspect. */
export const handoff: { set?: string } = {}
