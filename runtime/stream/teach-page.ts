// The teach panel that `watch --teach` adds to the watch page (runtime/stream/serve.ts's PAGE): plain
// HTML and a small script against the teach routes of runtime/stream/teach.ts.

/**
 * The teach panel of the watch page (served at GET / by `watch --teach`): label + token fields, "add N
 * live frames", photo upload (the picker cleared as soon as its files are read, so the same photos can be
 * picked again while they upload), the labels with their examples (each deletable), hard frames (each can be
 * labelled into the examples) and "train", all against the routes above. The token is kept in the
 * tab's sessionStorage only. The lists are refreshed after each action and every 10 s: only the newest
 * refresh is drawn (an older answer arriving later would show a stale list or say "training…" over the
 * outcome), an opened label's list stays open, and #t-labels is aria-busy while a refresh is under way.
 */
export const TEACH_PANEL = `<section id="teach" style="max-width:720px;margin:2vh auto;text-align:left;font-size:15px">
<h2 style="font-size:18px">Teach <a href="/kiosk/" style="font-size:14px;color:#9cf">(the kiosk page: camera, classes, hard frames)</a></h2>
<div><input id="t-label" placeholder="label" maxlength="64"> <input id="t-token" type="password" placeholder="token (EDGETUNE_TOKEN)">
<button id="t-frames">add 10 live frames</button> <label>photos <input id="t-files" type="file" accept="image/jpeg,image/png" multiple></label>
<button id="t-train">train</button></div>
<div id="t-msg" style="color:#e96;min-height:1.4em"></div>
<div id="t-labels"></div><h3 style="font-size:16px">Hard frames</h3><div id="t-hard"></div>
</section>
<script>
(()=>{const $=(id)=>document.getElementById(id);const tok=$('t-token');tok.value=sessionStorage.getItem('edgetune-token')||'';
tok.onchange=()=>sessionStorage.setItem('edgetune-token',tok.value);
const say=(m)=>{$('t-msg').textContent=m;};
const call=async(method,url,body)=>{const r=await fetch(url,{method,body,headers:{Authorization:'Bearer '+tok.value}});const j=await r.json().catch(()=>({}));if(!r.ok)throw new Error(j.error||r.status);return j;};
const label=()=>{const l=$('t-label').value.trim();if(!l)throw new Error('type a label first');return encodeURIComponent(l);};
const el=(tag,text,attrs={})=>{const e=document.createElement(tag);if(text)e.textContent=text;Object.assign(e,attrs);return e;};
let gen=0,busy=0;
async function refresh(){const g=++gen;const box=$('t-labels');if(busy++===0)box.setAttribute('aria-busy','true');
try{await refreshNow(g,box);}finally{if(--busy===0)box.removeAttribute('aria-busy');}}
async function refreshNow(g,box){const t=await (await fetch('/teach')).json();if(g!==gen)return;
const open=new Set([...box.querySelectorAll('details[open]')].map((d)=>d.dataset.label));box.replaceChildren();
for(const l of t.labels){const d=el('details','',{open:open.has(l.label)});d.dataset.label=l.label;d.append(el('summary',l.label+' ('+l.count+(l.new?', new':'')+')'));
for(const f of l.files){const b=el('button','✕ '+f);b.onclick=()=>call('DELETE','/teach/examples/'+encodeURIComponent(l.label)+'/'+f).then(refresh,(e)=>say(e.message));d.append(b);}box.append(d);}
if(t.training)say('training…');
const h=await (await fetch('/teach/hard')).json();if(g!==gen)return;const hb=$('t-hard');hb.replaceChildren();
for(const f of h.frames){const fig=el('figure','',{style:'display:inline-block;margin:4px'});fig.append(el('img','',{src:'/teach/hard/'+f.file,width:112,style:'width:112px;margin:0'}));
const b=el('button',(f.top[0]?f.top[0].label+' '+(f.top[0].score*100).toFixed(0)+'%':'?')+' → label');b.onclick=()=>{try{call('POST','/teach/examples?label='+label()+'&hard='+f.file).then(refresh,(e)=>say(e.message));}catch(e){say(e.message);}};
fig.append(el('br'),b);hb.append(fig);}}
$('t-frames').onclick=async()=>{try{say('capturing…');const r=await call('POST','/teach/examples?label='+label()+'&frames=10');say(r.added+' frames added to '+r.label);}catch(e){say(e.message);}refresh();};
$('t-files').onchange=async(ev)=>{const files=[...ev.target.files];ev.target.value='';try{for(const f of files){await call('POST','/teach/examples?label='+label(),f);}say(files.length+' photos added');}catch(e){say(e.message);}refresh();};
$('t-train').onclick=async()=>{try{say('training…');const r=await call('POST','/teach/train');say('serving '+r.labels.join(', ')+(r.accuracy!=null?' · validation '+(r.accuracy*100).toFixed(0)+'%':'')+' · '+r.seconds+' s');}catch(e){say(e.message);}refresh();};
refresh();setInterval(refresh,10000);})();
</script>`;
