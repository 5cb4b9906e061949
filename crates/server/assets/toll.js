// Toll's own script: draws the charts of a page with ECharts. A chart is an element with
// data-chart="traffic" and data-chart-source="ID", where ID is a <script type="application/json">
// that the server filled (never inline code: the pages' CSP runs scripts from /assets/ only).
// Pages work without it; the same figures are in a table.
(function () {
  "use strict";

  function readJson(id) {
    var el = document.getElementById(id);
    if (!el) return null;
    try {
      return JSON.parse(el.textContent);
    } catch (e) {
      return null;
    }
  }

  function trafficChart(el, data) {
    // ECharts' own texts (tool-tips, number formats) in the page's language.
    var chart = echarts.init(el, null, { renderer: "canvas", locale: data.locale });
    chart.setOption({
      color: ["#0b5cad"],
      grid: { left: 8, right: 40, top: 24, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: {
        type: "category",
        name: data.axis,
        nameLocation: "end",
        data: data.hours,
        axisTick: { alignWithLabel: true },
      },
      yAxis: { type: "value", minInterval: 1, splitLine: { lineStyle: { color: "#e9ecef" } } },
      series: [
        {
          name: data.series,
          type: "bar",
          data: data.calls,
          barMaxWidth: 28,
          itemStyle: { borderRadius: [3, 3, 0, 0] },
          emphasis: { itemStyle: { color: "#3b9dff" } },
        },
      ],
    });
    // Follow the card's width (window resizes, the navigation bar collapsing).
    if (window.ResizeObserver) {
      new ResizeObserver(function () { chart.resize(); }).observe(el);
    } else {
      window.addEventListener("resize", function () { chart.resize(); });
    }
  }

  function init() {
    if (!window.echarts) return;
    document.querySelectorAll('[data-chart="traffic"]').forEach(function (el) {
      var data = readJson(el.dataset.chartSource);
      if (data) trafficChart(el, data);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
