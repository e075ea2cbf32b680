"""The stylesheet and script inlined in every HTML report (report/html.py). The page's
Content-Security-Policy allows these two by their hashes and nothing else: no network, and no
script a model's names could smuggle in would run."""

STYLE = """
:root{--error:#d7263d;--warning:#f08a24;--info:#3a7bd5;--ok:#5a6270;--line:#8a93a3;--bg:#fff;--fg:#1d2330}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:var(--fg);background:var(--bg);margin:0 24px 40px}
h1{font-size:22px;margin:18px 0 6px}h2{font-size:18px;margin:28px 0 6px;word-break:break-all}
h3{font-size:15px;margin:18px 0 6px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.counts span{display:inline-block;margin-right:12px}
.pill{display:inline-block;border-radius:9px;padding:0 8px;color:#fff;font-size:12px;font-weight:600}
.pill.error{background:var(--error)}.pill.warning{background:var(--warning)}.pill.info{background:var(--info)}
.pill.none{background:var(--ok)}
table{border-collapse:collapse;margin:6px 0}
th,td{border-bottom:1px solid #e3e6ea;padding:4px 10px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.finding.picked{background:#fff6d6}
.facts td:first-child{color:#59606b;padding-left:0}
.graph-box{border:1px solid #d9dde3;border-radius:6px;margin:6px 0}
.toolbar{padding:4px 8px;border-bottom:1px solid #e3e6ea;background:#f6f7f9;font-size:12.5px}
.toolbar button{font:inherit;margin-right:4px;padding:0 8px;cursor:pointer}
.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin:0 4px 0 12px;vertical-align:-1px}
.legend i.error{background:var(--error)}.legend i.warning{background:var(--warning)}.legend i.info{background:var(--info)}
.legend i.none{background:#fff;border:1px solid var(--line)}
.graph-wrap{overflow:auto;max-height:78vh;contain:strict;height:78vh}
.graph-wrap.short{height:auto;contain:content}
svg text{font-size:12px;fill:var(--fg);pointer-events:none}
g.node rect{fill:#fff;stroke:var(--line);stroke-width:1.2}
g.node{cursor:pointer}
g.node text.c{fill:#59606b}g.node text.s{fill:#59606b;font-size:11px}
g.node.model rect{fill:#eef3fb;stroke-dasharray:5 3}
g.node.sev-info rect{stroke:var(--info);stroke-width:2.5;fill:#eef4fd}
g.node.sev-warning rect{stroke:var(--warning);stroke-width:2.5;fill:#fff4e8}
g.node.sev-error rect{stroke:var(--error);stroke-width:3;fill:#fdecee}
g.node.picked rect{stroke:#111;stroke-width:3.5}
g.node:focus{outline:none}
path.edge{fill:none;stroke:var(--line);stroke-width:1.2;marker-end:url(#arrow)}
path.edge.shared{stroke-dasharray:4 3}
#arrow path{fill:var(--line)}
details.scope{margin:10px 0}details.scope>summary{cursor:pointer;font-weight:600}
.panel{position:sticky;bottom:0;background:#fffdf5;border:1px solid #e8dca8;border-radius:6px;padding:8px 12px;margin:8px 0;display:none;max-height:40vh;overflow:auto}
.panel.open{display:block}.panel h4{margin:0 0 4px;font-size:14px;word-break:break-all}
.chart-wrap{overflow-x:auto;border:1px solid #e3e6ea;border-radius:6px;padding:4px}
rect.bar{fill:#7b8aa3}rect.bar.sev-error{fill:var(--error)}rect.bar.sev-warning{fill:var(--warning)}
rect.bar.sev-info{fill:var(--info)}rect.bar:hover{fill:#1d2330}
text.axis{fill:#59606b;font-size:11px}path.axis{stroke:var(--line);stroke-width:1}
.muted{color:#59606b}
"""

SCRIPT = """
(function(){
'use strict';
function zoomable(box){
  var svg=box.querySelector('svg.graph'),wrap=box.querySelector('.graph-wrap');
  var w=+svg.getAttribute('data-w'),h=+svg.getAttribute('data-h'),z=1;
  function set(nz){z=Math.max(0.05,Math.min(4,nz));svg.setAttribute('width',Math.round(w*z));
    svg.setAttribute('height',Math.round(h*z));box.setAttribute('data-zoom',z.toFixed(2));}
  box.querySelector('.zoom-in').addEventListener('click',function(){set(z*1.25);});
  box.querySelector('.zoom-out').addEventListener('click',function(){set(z/1.25);});
  box.querySelector('.zoom-fit').addEventListener('click',function(){set(Math.min(1,(wrap.clientWidth-4)/w,(wrap.clientHeight-4)/h));});
  box.querySelector('.zoom-one').addEventListener('click',function(){set(1);});
  wrap.addEventListener('wheel',function(e){if(!e.ctrlKey&&!e.metaKey)return;e.preventDefault();set(z*(e.deltaY<0?1.1:1/1.1));},{passive:false});
}
function line(parent,tag,text,cls){var e=document.createElement(tag);e.textContent=text;if(cls)e.className=cls;parent.appendChild(e);return e;}
function select(node){
  var section=node.closest('section.model'),panel=section.querySelector('.panel');
  section.querySelectorAll('.picked').forEach(function(e){e.classList.remove('picked');});
  node.classList.add('picked');
  panel.textContent='';
  line(panel,'h4',node.getAttribute('data-layer')+' ('+node.getAttribute('data-class')+')');
  line(panel,'div','output shape '+node.getAttribute('data-shape')+' \\u00b7 '+node.getAttribute('data-params-text')+' params \\u00b7 '+node.getAttribute('data-macs-text')+' MACs','mono');
  var formula=node.getAttribute('data-formula');
  if(formula)line(panel,'div','How: '+formula,'mono');
  var ids=(node.getAttribute('data-findings')||'').split(' ').filter(Boolean);
  if(ids.length){var t=document.createElement('table');ids.forEach(function(id){var row=document.getElementById(id);
    if(row){row.classList.add('picked');t.appendChild(row.cloneNode(true));}});panel.appendChild(t);}
  else line(panel,'div','No findings on this layer.','muted');
  var scope=node.getAttribute('data-scope');
  if(scope){var d=document.getElementById(scope);if(d){d.open=true;line(panel,'div','Its layers: the nested model below.','muted');}}
  panel.classList.add('open');
}
function reveal(id){
  var node=document.getElementById(id);if(!node)return;
  var d=node.closest('details');while(d){d.open=true;d=d.parentElement.closest('details');}
  node.scrollIntoView({block:'center',inline:'center'});select(node);
}
document.querySelectorAll('.graph-box').forEach(zoomable);
document.addEventListener('click',function(e){
  var node=e.target.closest('g.node');if(node){select(node);return;}
  var link=e.target.closest('a.layer');if(link){e.preventDefault();reveal(link.getAttribute('href').slice(1));}
});
document.addEventListener('keydown',function(e){
  if(e.key==='Enter'&&e.target.matches&&e.target.matches('g.node'))select(e.target);
});
var target=location.hash.length>1&&document.getElementById(location.hash.slice(1));
if(target&&target.matches('g.node'))select(target);  // report.html#m0-s0-n3 opens on that layer
document.body.setAttribute('data-ready','1');
})();
"""
