-- Drives `apiload lsp` from a real editor, for linter/tests/lsp_neovim.rs:
--
--   APILOAD_BIN=… APILOAD_ROOT=… APILOAD_OUT=… nvim --headless --clean -n -i NONE -c "luafile neovim.lua"
--
-- Opens the DaemonSet of the workspace at APILOAD_ROOT, waits for AL101
-- (found through the ClusterRole in another file), then edits the ClusterRole
-- in its buffer to drop `watch` and waits for AL101 to go. Writes what it saw
-- to APILOAD_OUT, one fact per line, and quits. Every wait is bounded.
-- Works with Neovim 0.7 (Debian 12: vim.lsp.start_client) and later (vim.lsp.start).

local bin = os.getenv('APILOAD_BIN')
local root = os.getenv('APILOAD_ROOT')
local out = assert(io.open(os.getenv('APILOAD_OUT'), 'w'))
local WAIT_MS = 20000

local function say(line)
  out:write(line .. '\n')
  out:flush()
end

vim.o.hidden = true

local config = {
  name = 'apiload',
  cmd = { bin, 'lsp' },
  root_dir = root,
  workspace_folders = { { uri = vim.uri_from_fname(root), name = 'workspace' } },
  flags = { debounce_text_changes = 50 },
}

local client_id
local function attach(buf)
  if vim.lsp.start then
    vim.api.nvim_set_current_buf(buf)
    client_id = vim.lsp.start(config)
  else
    client_id = client_id or vim.lsp.start_client(config)
    vim.lsp.buf_attach_client(buf, client_id)
  end
end

local function open(rel)
  vim.cmd('edit ' .. vim.fn.fnameescape(root .. '/' .. rel))
  local buf = vim.api.nvim_get_current_buf()
  attach(buf)
  return buf
end

local function main()
  local ds = open('agents/node-agent.yaml')
  local function al101()
    for _, d in ipairs(vim.diagnostic.get(ds)) do
      if d.code == 'AL101' then
        return d
      end
    end
  end
  if not vim.wait(WAIT_MS, function() return al101() ~= nil end, 20) then
    say('timeout: no AL101 on the DaemonSet')
    return
  end
  local d = al101()
  say(string.format('AL101 %d:%d-%d:%d', d.lnum, d.col, d.end_lnum, d.end_col))
  local lsp = d.user_data and d.user_data.lsp or {}
  say('related ' .. #(lsp.relatedInformation or {}))

  local role = open('rbac/node-agent.yaml')
  local lines = vim.api.nvim_buf_get_lines(role, 0, -1, false)
  local edited = false
  for i, line in ipairs(lines) do
    if line:find('verbs:', 1, true) then
      vim.api.nvim_buf_set_lines(role, i - 1, i, false, { (line:gsub(', "watch"', '')) })
      edited = true
      break
    end
  end
  say('edited ' .. tostring(edited))
  if not vim.wait(WAIT_MS, function() return al101() == nil end, 20) then
    say('timeout: AL101 is still there after the edit')
    return
  end
  say('gone')
end

local ok, err = pcall(main)
if not ok then
  say('error: ' .. tostring(err))
end
out:close()
vim.cmd('qall!')
