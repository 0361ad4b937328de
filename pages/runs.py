"""runs page."""
import streamlit as st

st.title("Runs")
st.warning("This page is being built.")
